"""One module of the start-up project: the benchmark collects copies of it, ten tests each."""


def test_0() -> None:
    assert True


def test_1() -> None:
    assert True


def test_2() -> None:
    assert True


def test_3() -> None:
    assert True


def test_4() -> None:
    assert True


def test_5() -> None:
    assert True


def test_6() -> None:
    assert True


def test_7() -> None:
    assert True


def test_8() -> None:
    assert True


def test_9() -> None:
    assert True
