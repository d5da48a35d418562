"""The mutation score after `mutmut run`, in mutation-report.md (the nox session `mutation`).

    python ci/mutation_report.py [PATTERN ...]

PATTERNs are the mutant names the run was given (``"pytest_bgtasks._faults*"``); none means every
mutant. The score counts a mutant as detected when a test killed it or it timed out (a mutant that
hangs the suite fails it); survivors, untested, suspicious and unchecked mutants all count against
it, listed equivalents included. Exits 1 when the score is under 90 % or when a mutant that was
not detected is missing from ci/mutation-equivalents.toml (its name, and the reason it cannot be
told apart from the original), and prints what failed.
"""

from __future__ import annotations

import datetime
import fnmatch
import subprocess
import sys
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "ci" / "mutation-equivalents.toml"
REPORT = ROOT / "mutation-report.md"
THRESHOLD = 0.90
DETECTED = {"killed", "timeout", "caught by type check"}


def mutmut(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def statuses(patterns: list[str]) -> dict[str, str]:
    """Every mutant's status, as `mutmut results --all true` prints it, matching the patterns."""
    found = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and (not patterns or any(fnmatch.fnmatch(name, p) for p in patterns)):
            found[name] = status
    return found


def main(patterns: list[str]) -> int:
    equivalents: dict[str, str] = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))["mutants"]
    found = statuses(patterns)
    if not found:
        print("mutation report: no mutants found; run `mutmut run` first", file=sys.stderr)
        return 1
    counts = Counter(found.values())
    detected = sum(counts[status] for status in DETECTED)
    score = detected / len(found)
    undetected = sorted(name for name, status in found.items() if status not in DETECTED)
    unexplained = [name for name in undetected if name not in equivalents]
    listed = [name for name in undetected if name in equivalents]
    stale = sorted(
        name for name in equivalents if name in found and found[name] in DETECTED
    )  # fmt: skip

    scope = ", ".join(patterns) or "pytest_bgtasks (every mutant)"
    lines = [
        "# Mutation report",
        "",
        f"{datetime.date.today().isoformat()}, mutmut on {scope}.",
        "",
        f"**Score: {score:.1%}** ({detected} of {len(found)} mutants detected: "
        f"{counts['killed']} killed, {counts['timeout']} timed out). "
        f"The threshold is {THRESHOLD:.0%}.",
        "",
        "| status | mutants |",
        "|---|---|",
        *(f"| {status} | {count} |" for status, count in sorted(counts.items())),
        "",
        f"## Not detected, explained ({len(listed)}, ci/mutation-equivalents.toml)",
        "",
    ]
    for name in listed:
        lines += [f"- `{name}` ({found[name]}): {equivalents[name]}"]
    lines += ["", f"## Not detected, unexplained ({len(unexplained)})", ""]
    for name in unexplained:
        lines += [f"### `{name}` ({found[name]})", "", "```diff", mutmut("show", name).strip()]
        lines += ["```", ""]
    if stale:
        lines += ["", "## Listed as equivalent but detected now: remove them", ""]
        lines += [f"- `{name}`" for name in stale]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")

    print(f"mutation score {score:.1%} ({detected}/{len(found)}); report: {REPORT.name}")
    failed = False
    if score < THRESHOLD:
        print(f"FAILED: the score is under {THRESHOLD:.0%}")
        failed = True
    if unexplained:
        print(f"FAILED: {len(unexplained)} mutants neither detected nor listed as equivalent:")
        print("\n".join(f"  {name} ({found[name]})" for name in unexplained))
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
