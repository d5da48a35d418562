"""Benchmarks for pytest-bgtasks: overhead, capture cost, memory, start-up and time saved.

Run from the repository root::

    python benchmarks/run.py            # full mode, a few minutes; writes benchmarks/results.json
    python benchmarks/run.py --quick    # CI: proves the benchmarks still work

Every comparison runs both sides in one process (or one series of subprocesses), in alternating
rounds, and reports medians and the median of the per-pair ratios (``harness``). The sections
are the modules listed in ``sections.SECTIONS``. Targets are reported, never enforced: the
script exits 0 whether or not they are met.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import report
from harness import Row

warnings.filterwarnings("ignore", category=DeprecationWarning)

from sections import SECTIONS  # noqa: E402  (after the filter: FastAPI imports at load)

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"
NAMES = [section.name for section in SECTIONS]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small N (for CI)")
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write the summary (default: benchmarks/results.json in full mode,"
        " nowhere in quick mode)",
    )
    parser.add_argument(
        "--samples", type=Path, help="also write every raw sample here (keep it out of the repo)"
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table in Markdown")
    parser.add_argument(
        "--only", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)}"
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(NAMES)
    if unknown:
        parser.error(
            f"--only: no section named {', '.join(sorted(unknown))};"
            f" the sections are {', '.join(NAMES)}"
        )
    if args.json is None and not args.quick:
        args.json = DEFAULT_JSON
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    rows: list[Row] = []
    sizes: dict[str, object] = {}
    for section in SECTIONS:
        if section.name in args.only:
            print(f"[{section.name}] ...", end="", flush=True, file=sys.stderr)
            start = time.perf_counter()
            section_sizes = section.sizes(args.quick)
            sizes[section.name] = asdict(section_sizes)
            rows.extend(section.measure(section_sizes))
            print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr)
    elapsed = time.perf_counter() - started

    print(f"\npytest-bgtasks benchmarks ({mode} mode, {elapsed:.0f} s)")
    print(report.table(rows))
    print(report.notes(rows))
    missed = [row.metric.strip() for row in rows if row.verdict == "MISS"]
    if missed:
        print(f"\nMISS ({len(missed)}): {'; '.join(missed)} (reported, not enforced)")
    if args.quick:
        print("quick mode: few rounds and small N, so ratios are mostly noise; it proves the")
        print("benchmarks still run. Judge targets on a full run.")
    if args.markdown:
        print()
        print(report.markdown(rows))

    header = {
        "mode": mode,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(elapsed, 1),
        "machine": report.machine(),
        "sizes": sizes,
    }
    for path, results in ((args.json, report.summary(rows)), (args.samples, report.samples(rows))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**header, "results": results}, indent=2) + "\n")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
