"""What the plugin adds to pytest's start-up: a ``--collect-only`` of a 200-test project."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import Pairs, Row, Section, alternate, ratio_row
from pytest_runs import (
    cached_bytecode_env,
    from_source_env,
    import_times,
    project_copy,
    run_pytest,
)

#: Tests in each copy of ``projects/startup/test_module.py``.
TESTS_PER_MODULE = 10


@dataclass(frozen=True)
class Sizes:
    tests: int
    rounds: int
    from_source: bool  # also measure with no bytecode written (slow)


def measure(sizes: Sizes) -> list[Row]:
    variants = [("bytecode cached", cached_bytecode_env())]
    if sizes.from_source:
        variants.append(("plugin compiled from source", from_source_env()))
    rows = []
    with project_copy("startup") as project:
        module = project / "test_module.py"
        for m in range(sizes.tests // TESTS_PER_MODULE):
            shutil.copyfile(module, project / f"test_mod{m:03d}.py")
        module.unlink()
        for label, env in variants:
            rows.append(
                ratio_row(
                    f"start-up: --collect-only, {sizes.tests} tests ({label})",
                    "ms",
                    collect_only(project, env, sizes.rounds),
                    f"{sizes.rounds} alternating pairs of subprocess runs vs -p no:bgtasks",
                )
            )
        total, ranked = plugin_only_imports(project, cached_bytecode_env())
    top = ", ".join(f"{name} {ms:.1f}" for name, ms in ranked[:8])
    rows.append(
        Row(
            metric="start-up: imports only the plugin brings",
            unit="ms",
            plugin=total,
            baseline=None,
            figure=f"{total:.1f} ms",
            target="-",
            verdict="INFO",
            details={"imports_by_package_ms": ranked},
            notes=f"-X importtime self times (inflated by the tracing), ms: {top}",
        )
    )
    return rows


def collect_only(project: Path, env: dict[str, str], rounds: int) -> Pairs:
    """ms per ``pytest --collect-only``, with the plugin vs ``-p no:bgtasks``."""
    pairs = alternate(
        rounds,
        lambda: run_pytest(project, ["--collect-only"], env),
        lambda: run_pytest(project, ["--collect-only", "-p", "no:bgtasks"], env),
    )
    return Pairs([t * 1e3 for t in pairs.plugin], [t * 1e3 for t in pairs.baseline])


def plugin_only_imports(
    project: Path, env: dict[str, str]
) -> tuple[float, list[tuple[str, float]]]:
    """ms of the modules imported at start-up only because of the plugin, by package."""
    with_plugin = import_times(project, ["-p", "no:cacheprovider"], env)
    without = import_times(project, ["-p", "no:cacheprovider", "-p", "no:bgtasks"], env)
    extra = {name: us for name, us in with_plugin.items() if name not in without}
    by_package: dict[str, int] = {}
    for name, us in extra.items():
        top = name.split(".")[0]
        if top == "pytest_bgtasks":
            top = name
        by_package[top] = by_package.get(top, 0) + us
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])
    return sum(extra.values()) / 1e3, [(name, us / 1e3) for name, us in ranked]


SECTION = Section(
    name="startup",
    measure=measure,
    full=Sizes(tests=200, rounds=20, from_source=True),
    quick=Sizes(tests=200, rounds=3, from_source=False),
)
