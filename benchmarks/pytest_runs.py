"""pytest in a subprocess, over a copy of one of the projects in ``benchmarks/projects/``.

The copy lives in a temporary directory with no ini file of its own, so the project runs as a
user's would, with the plugin loaded from its entry point, and the work tree stays clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECTS = Path(__file__).resolve().parent / "projects"


@contextmanager
def project_copy(name: str) -> Iterator[Path]:
    """A fresh copy of ``benchmarks/projects/<name>``, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix=f"bgtasks-bench-{name}-") as tmp:
        project = Path(tmp) / name
        shutil.copytree(PROJECTS / name, project, ignore=shutil.ignore_patterns("__pycache__"))
        yield project


def cached_bytecode_env() -> dict[str, str]:
    """Keep compiled bytecode (in a private cache, so the work tree stays clean)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "bgtasks-bench-pycache")
    return env


def from_source_env() -> dict[str, str]:
    """Write no bytecode: every start compiles the plugin from source."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def run_pytest(project: Path, args: list[str], env: dict[str, str]) -> float:
    """Seconds for one ``python -m pytest -p no:cacheprovider -q *args`` in ``project``."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def import_times(project: Path, args: list[str], env: dict[str, str]) -> dict[str, int]:
    """Each module's own import time in µs, from ``-X importtime``, for a ``--collect-only``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest", "--collect-only", "-q", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    found: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            own, _, name = line[len("import time:") :].split("|")
            found[name.strip()] = int(own)
    return found
