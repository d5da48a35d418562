"""The built wheel, installed alone in a clean venv, as a user gets it from `pip install`.

`nox -s wheel` copies this file to a temporary directory outside the source tree and runs it
there: no conftest.py, no ini file, no `-p`. The `bgtasks` fixture and marker must come from the
wheel's pytest11 entry point alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient

import pytest_bgtasks

app = FastAPI()
written: list[str] = []


def write_log(message: str) -> None:
    written.append(message)


@app.post("/send-notification/{email}")
async def send_notification(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(write_log, f"Notification sent to {email}")
    return {"message": "Notification sent in the background"}


@pytest.fixture(autouse=True)
def _clean() -> None:
    written.clear()


def test_the_fixture_records_a_task(bgtasks: pytest_bgtasks.BackgroundTaskRecorder) -> None:
    response = TestClient(app).post("/send-notification/ann@example.com")

    assert response.json() == {"message": "Notification sent in the background"}
    call = bgtasks.assert_scheduled_once(write_log, "Notification sent to ann@example.com")
    assert call.status == "succeeded"
    assert written == ["Notification sent to ann@example.com"]


@pytest.mark.bgtasks(mode="deferred")  # --strict-markers: the marker is registered too
def test_the_marker_defers_tasks(bgtasks: pytest_bgtasks.BackgroundTaskRecorder) -> None:
    TestClient(app).post("/send-notification/bob@example.com")

    assert written == []
    (held,) = bgtasks.held
    bgtasks.run_all()
    assert held.status == "succeeded"
    assert written == ["Notification sent to bob@example.com"]


def test_the_plugin_is_the_installed_wheel(pytestconfig: pytest.Config) -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(pytest_bgtasks.__file__).resolve().is_relative_to(site_packages)
    dist = importlib.metadata.distribution("pytest-bgtasks")
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert not direct_url.get("dir_info", {}).get("editable"), direct_url
    assert direct_url.get("url", "").endswith(".whl"), direct_url
    plugins = [(ep.name, ep.value) for ep in dist.entry_points if ep.group == "pytest11"]
    assert plugins == [("bgtasks", "pytest_bgtasks.plugin")]
    assert pytestconfig.pluginmanager.has_plugin("bgtasks")
    files = {str(path) for path in dist.files or ()}
    assert "pytest_bgtasks/py.typed" in files
    assert any(path.endswith("LICENSE") for path in files), sorted(files)


def _pytest(tmp_path: Path, *args: str) -> str:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_pytest_fixtures_lists_bgtasks(tmp_path: Path) -> None:
    out = _pytest(tmp_path, "--fixtures")
    assert "fixtures defined from pytest_bgtasks.plugin" in out, out
    assert re.search(r"^bgtasks\b", out, re.MULTILINE), out


def test_pytest_help_and_markers_list_the_plugin(tmp_path: Path) -> None:
    assert "--bgtasks-report" in _pytest(tmp_path, "--help")
    assert "@pytest.mark.bgtasks" in _pytest(tmp_path, "--markers")
