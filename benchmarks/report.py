"""The report: the table on the terminal, its Markdown for BENCHMARKS.md, and the JSON files.

The summary JSON holds what the table shows plus the small findings of each row; the samples
JSON (only with ``--samples``) holds every raw measurement.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from harness import Row

HEADER = ["metric", "unit", "plugin", "baseline", "ratio / figure", "target", ""]
PACKAGES = ("pytest-bgtasks", "pytest", "starlette", "fastapi", "anyio", "httpx")


def machine() -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "packages": {name: version(name) for name in PACKAGES},
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(rows: list[Row]) -> list[object]:
    """The rows without their samples, rounded."""
    kept = []
    for row in rows:
        fields = asdict(row)
        del fields["samples"]
        kept.append(rounded(fields))
    return kept


def samples(rows: list[Row]) -> list[object]:
    """Every raw measurement, row by row, rounded."""
    return [{"metric": row.metric, "samples": rounded(row.samples)} for row in rows]


def rounded(value: object) -> object:
    """Floats to 4 significant digits, so the JSON stays small."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def cells(rows: list[Row]) -> list[list[str]]:
    return [
        [r.metric, r.unit, fmt(r.plugin), fmt(r.baseline), r.figure, r.target, r.verdict]
        for r in rows
    ]


def table(rows: list[Row]) -> str:
    grid = [HEADER, *cells(rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in grid]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for line in cells(rows):
        line[0] = line[0].strip().replace("same, ", "↳ same, ")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |")
    return "\n".join(lines)


def notes(rows: list[Row]) -> str:
    return "\n".join(f"  * {row.metric.strip()}: {row.notes}" for row in rows if row.notes)
