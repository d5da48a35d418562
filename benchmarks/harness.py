"""The method every comparison follows, and the shapes the report is made of.

Machines are noisy, so a comparison never sets one long run against another: it runs both sides
in one process, in short rounds that alternate which side goes first, and reports the median of
the per-pair ratios (or differences). A pair runs back to back, so slow drift cancels out.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

#: The sizes a section runs with: a frozen dataclass per section, one value per mode.
SizesT = TypeVar("SizesT")

#: The ratio the overhead and start-up rows aim for.
RATIO_TARGET = 1.05


@dataclass
class Row:
    """One line of the table; ``plugin`` and ``baseline`` are medians in ``unit``.

    ``samples`` are the raw measurements (written only with ``--samples``); ``details`` are small
    findings that belong to the summary, such as the biggest allocation sites.
    """

    metric: str
    unit: str
    plugin: float | None
    baseline: float | None
    figure: str
    target: str
    verdict: str  # PASS, MISS or INFO
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)
    notes: str = ""


@dataclass(frozen=True)
class Section(Generic[SizesT]):
    """A part of the report: ``--only`` selects it by ``name``; ``measure`` returns its rows.

    ``full`` and ``quick`` are the sizes for each mode; quick mode only proves the section runs.
    To add a section, write a module that defines one, and list it in ``sections.SECTIONS``.
    """

    name: str
    measure: Callable[[SizesT], list[Row]]
    full: SizesT
    quick: SizesT

    def sizes(self, quick: bool) -> SizesT:
        return self.quick if quick else self.full


@dataclass(frozen=True)
class Pairs:
    """Alternating rounds of both sides, pair by pair: the figures of the method come from here."""

    plugin: list[float]
    baseline: list[float]

    @property
    def ratios(self) -> list[float]:
        return [p / b for p, b in zip(self.plugin, self.baseline, strict=True)]

    @property
    def ratio(self) -> float:
        """The median of the per-pair ratios."""
        return median(self.ratios)

    @property
    def added(self) -> float:
        """The median of the per-pair differences, plugin minus baseline."""
        return median([p - b for p, b in zip(self.plugin, self.baseline, strict=True)])

    @property
    def ratio_of_medians(self) -> float:
        return median(self.plugin) / median(self.baseline)

    def samples(self) -> dict[str, list[float]]:
        return {"plugin": self.plugin, "baseline": self.baseline, "ratios": self.ratios}


def median(values: list[float]) -> float:
    return statistics.median(values)


def judge(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def alternate(
    rounds: int,
    plugin: Callable[[], float],
    baseline: Callable[[], float],
    *,
    full_gc: bool = True,
) -> Pairs:
    """One warm-up of each side, then ``rounds`` pairs, swapping which side goes first.

    With ``full_gc`` a full collection runs before each round (long rounds only: it is slow).
    """
    plugin()
    baseline()
    on: list[float] = []
    off: list[float] = []
    for i in range(rounds):
        pair = [(plugin, on), (baseline, off)]
        for run, into in pair if i % 2 == 0 else reversed(pair):
            if full_gc:
                gc.collect()
            into.append(run())
    return Pairs(on, off)


async def alternate_async(
    rounds: int,
    plugin: Callable[[], Awaitable[float]],
    baseline: Callable[[], Awaitable[float]],
) -> Pairs:
    """`alternate` for rounds that run on an event loop (no collections between rounds)."""
    await plugin()
    await baseline()
    on: list[float] = []
    off: list[float] = []
    for i in range(rounds):
        pair = [(plugin, on), (baseline, off)]
        for run, into in pair if i % 2 == 0 else reversed(pair):
            into.append(await run())
    return Pairs(on, off)


def ratio_row(metric: str, unit: str, pairs: Pairs, notes: str) -> Row:
    """A row judged on the median of the per-pair ratios, against `RATIO_TARGET`."""
    return Row(
        metric=metric,
        unit=unit,
        plugin=median(pairs.plugin),
        baseline=median(pairs.baseline),
        figure=f"x{pairs.ratio:.3f}",
        target=f"<= x{RATIO_TARGET}",
        verdict=judge(pairs.ratio <= RATIO_TARGET),
        samples=pairs.samples(),
        notes=f"{notes}; ratio of the medians x{pairs.ratio_of_medians:.3f}",
    )


def added_row(metric: str, unit: str, pairs: Pairs, notes: str, *, at_most: float | None) -> Row:
    """A row whose figure is the added cost in µs, the median of the per-pair differences.

    With ``at_most`` (µs) it is judged against it; without, it is for information.
    """
    return Row(
        metric=metric,
        unit=unit,
        plugin=median(pairs.plugin),
        baseline=median(pairs.baseline),
        figure=f"{pairs.added:+.{1 if abs(pairs.added) >= 10 else 2}f} us (x{pairs.ratio:.2f})",
        target="-" if at_most is None else f"<= +{at_most:g} us",
        verdict="INFO" if at_most is None else judge(pairs.added <= at_most),
        samples=pairs.samples(),
        notes=f"{notes}; figure = median of the per-pair differences",
    )
