"""Matchers as expected arguments: any object whose ``__eq__`` decides, such as dirty-equals'."""

from __future__ import annotations

from typing import Any

import pytest
from dirty_equals import IsInt, IsPartialDict, IsStr
from fastapi import BackgroundTasks, FastAPI
from starlette.testclient import TestClient

from pytest_bgtasks import BackgroundTaskRecorder


def store_order(order_id: int, order: dict[str, Any], note: str) -> None:
    """A task of the order app: it only has to be scheduled."""


orders = FastAPI()


@orders.post("/orders/{order_id}")
async def create_order(
    order_id: int, order: dict[str, Any], background_tasks: BackgroundTasks
) -> dict[str, int]:
    background_tasks.add_task(store_order, order_id, order, note=f"order {order_id} by web")
    return {"id": order_id}


def post_orders(*order_ids: int) -> None:
    client = TestClient(orders)
    for order_id in order_ids:
        client.post(f"/orders/{order_id}", json={"sku": "A-1", "qty": order_id, "gift": False})


def test_dirty_equals_matchers_match_as_expected_arguments(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    post_orders(7)

    call = bgtasks.assert_scheduled(
        store_order,
        IsInt(gt=0),
        IsPartialDict(sku="A-1"),
        note=IsStr(regex=r"order \d+ by web"),
    )
    assert call.arguments["order_id"] == 7
    bgtasks.assert_scheduled_once("store_order", order=IsPartialDict(qty=IsInt(ge=5)))
    bgtasks.assert_scheduled_times(store_order, 1, note=IsStr(regex=r"order 7 .*"))
    with bgtasks.capture() as block:
        post_orders(8)
    block.assert_scheduled_once(store_order, IsInt(ge=8))


def test_a_matcher_that_does_not_match_fails_naming_the_matcher(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    post_orders(7)

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled(store_order, order=IsPartialDict(sku="B-2"))
    assert str(raised.value).splitlines()[0] == (
        "Expected a background task store_order(order=IsPartialDict(sku='B-2')) to be scheduled."
    )
    with pytest.raises(AssertionError, match=r"store_order\(note=IsStr\(regex='mobile'\)\)"):
        bgtasks.assert_scheduled(store_order, note=IsStr(regex="mobile"))
    bgtasks.assert_not_scheduled("send_email")


def test_a_wrong_count_with_matchers_lists_matches_and_near_misses(
    bgtasks: BackgroundTaskRecorder,
) -> None:
    post_orders(30, 1, 2)  # the matcher's last comparison is a match

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled_times(store_order, 3, IsInt(lt=10))

    lines = str(raised.value).splitlines()
    assert lines[0] == (  # the matcher, not the value it last matched (dirty-equals' repr)
        "Expected a background task store_order(order_id=IsInt(lt=10)) to be scheduled 3 times,"
        " it was scheduled 2 times."
    )
    assert lines[1] == "Matching tasks (2):"
    assert lines[2].startswith("#2 store_order(order_id=1, ")
    assert lines[3].startswith("#3 store_order(order_id=2, ")
    assert lines[4] == "Near misses, store_order with other arguments (1):"
    assert lines[5].startswith("#1 store_order(order_id=30, ")


def test_a_name_target_shows_the_matcher_too(bgtasks: BackgroundTaskRecorder) -> None:
    post_orders(1)

    with pytest.raises(AssertionError) as raised:
        bgtasks.assert_scheduled_once("store_order", IsInt(), IsPartialDict(sku="B-2"))

    assert str(raised.value).splitlines()[0] == (
        "Expected a background task store_order(order_id=IsInt(), order=IsPartialDict(sku='B-2'))"
        " to be scheduled once, it was scheduled 0 times."
    )
