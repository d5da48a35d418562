"""What a whole test costs with the ``bgtasks`` fixture, as a user's pytest run sees it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness import Pairs, Row, Section, ratio_row
from pytest_runs import cached_bytecode_env, project_copy, run_pytest


@dataclass(frozen=True)
class Sizes:
    pairs: int
    requests: int  # per test


def measure(sizes: Sizes) -> list[Row]:
    """One pytest run of ``projects/user``: pairs of tests, with the fixture vs without."""
    with project_copy("user") as project:
        out = project / "durations.json"
        env = {
            **cached_bytecode_env(),
            "BGTASKS_BENCH_OUT": str(out),
            "BGTASKS_BENCH_PAIRS": str(sizes.pairs),
            "BGTASKS_BENCH_REQUESTS": str(sizes.requests),
        }
        run_pytest(project, [], env)
        durations: dict[str, float] = json.loads(out.read_text())
    sides: dict[str, dict[int, float]] = {"plugin": {}, "baseline": {}}
    for nodeid, seconds in durations.items():  # test_requests.py::test_requests[<n>-<side>]
        n, side = nodeid.rpartition("[")[2].rstrip("]").split("-")
        sides[side][int(n)] = seconds * 1e3
    pairs = sorted(sides["plugin"])[1:]  # the first pair warms up
    return [
        ratio_row(
            f"overhead as a user sees it: a test of {sizes.requests} requests",
            "ms/test",
            Pairs(
                plugin=[sides["plugin"][n] for n in pairs],
                baseline=[sides["baseline"][n] for n in pairs],
            ),
            f"{len(pairs)} pairs of tests in one pytest run, with the bgtasks fixture vs"
            " without, back to back; set-up + call + teardown of each test",
        )
    ]


SECTION = Section(
    name="user",
    measure=measure,
    full=Sizes(pairs=150, requests=10),
    quick=Sizes(pairs=15, requests=10),
)
