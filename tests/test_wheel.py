"""longhaul as a user gets it: the wheel built from this repository holds the engine alone; installed into a
fresh virtual environment that cannot see this checkout, ``longhaul init`` makes an application whose own
tests pass, and ``longhaul dev`` there runs its events and reloads its code when it changes, while a run
waiting on a timer carries on across the reload. Times are reported (printed), not asserted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _outside_env(venv: Path) -> dict[str, str]:
    """A shell with only the new environment on its PATH: nothing of this checkout or its settings."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "LONGHAUL_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return {**kept, "PATH": f"{venv / 'bin'}{os.pathsep}{kept.get('PATH', '')}"}


def _run(
    argv: list[str | Path], cwd: Path, env: dict[str, str], limit: float
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=limit
    )
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution, built from a copy of what it is made of (the checkout stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "longhaul", source / "longhaul", ignore=shutil.ignore_patterns("__pycache__"))
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source],
        work,
        dict(os.environ),
        300,
    )
    [built] = (work / "dist").glob("longhaul-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel (and its testing extra) installed."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    began = time.monotonic()
    _run([sys.executable, "-m", "venv", root], root.parent, dict(os.environ), 120)
    _run([root / "bin" / "pip", "install", "-q", f"{wheel}[testing]"], root.parent, _outside_env(root), 900)
    print(f"\nfresh venv with the wheel: {time.monotonic() - began:.0f} s")
    return root


def test_the_wheel_holds_the_engine_alone(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"longhaul", "longhaul-0.1.0.dist-info"}
    assert not [n for n in names if n.split("/")[0] in ("workflows", "activities", "starters", "providers")]
    assert "longhaul/scaffold/hello/workflows/greetings.py.tmpl" in names  # what `longhaul init` writes
    assert "longhaul/api/ui/templates/run.html" in names
    entry_points = zipfile.ZipFile(wheel).read("longhaul-0.1.0.dist-info/entry_points.txt").decode()
    assert "longhaul = longhaul.cli:main" in entry_points
    print(f"\nwheel: {wheel.stat().st_size / 1024:.0f} KiB, {len(names)} files")


def test_a_new_application_from_the_wheel_passes_its_tests_runs_events_and_reloads(
    venv: Path, tmp_path: Path
) -> None:
    env = _outside_env(venv)
    located = _run(
        [venv / "bin" / "python", "-c", "import longhaul; print(longhaul.__file__)"], tmp_path, env, 60
    )
    assert located.stdout.startswith(str(venv)), located.stdout  # not this checkout's
    _run([venv / "bin" / "longhaul", "init", "shop"], tmp_path, env, 60)
    app = tmp_path / "shop"
    began = time.monotonic()
    tested = _run([venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider"], app, env, 300)
    summary = tested.stdout.strip().splitlines()[-1]
    print(f"\nthe scaffold's own tests: {time.monotonic() - began:.1f} s ({summary})")

    with _dev(venv, app, env) as (http, log):
        assert _greet(http, "Ada") == "Hello, Ada!"
        waiting = _send(http, "Grace", wait_seconds=20)  # a durable timer across the reload
        activity = app / "activities" / "greetings.py"
        edited = time.monotonic()
        activity.write_text(
            activity.read_text().replace('f"Hello, {request.name}!"', 'f"Howdy, {request.name}!"')
        )
        wait_until(lambda: "reloaded in" in log.read_text(), 90, "the reload")
        reloaded = time.monotonic() - edited
        assert _greet(http, "Linus") == "Howdy, Linus!"
        serving = time.monotonic() - edited
        assert _finished(http, waiting, 90)["output"] == {"message": "Howdy, Grace!"}
    said = next(line for line in log.read_text().splitlines() if "reloaded in" in line)
    print(
        f"reload: edit -> reloaded {reloaded:.1f} s, edit -> a run with the new code {serving:.1f} s ({said})"
    )


def _send(http: httpx.Client, name: str, **payload: Any) -> str:
    answer = http.post("/api/events/greeting.requested", json={"payload": {"name": name, **payload}})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["runs"][0]["run_id"])


def _finished(http: httpx.Client, run_id: str, limit: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
        if run["status"] in ("completed", "failed", "cancelled"):
            assert run["status"] == "completed", run
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def _greet(http: httpx.Client, name: str) -> str:
    return str(_finished(http, _send(http, name), 60)["output"]["message"])


@contextmanager
def _dev(venv: Path, app: Path, env: dict[str, str]) -> Iterator[tuple[httpx.Client, Path]]:
    """``longhaul dev`` in the application's folder, on free ports; stopped as Ctrl-C would."""
    api, temporal, ui = free_port(), free_port(), free_port()
    log = app.parent / "dev.log"
    argv = [venv / "bin" / "longhaul", "dev", "--api-port", api, "--temporal-port", temporal, "--ui-port", ui]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(a) for a in argv],
            cwd=app,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: "longhaul dev is up" in log.read_text() or process.poll() is not None, 180, "longhaul dev"
        )
        assert process.poll() is None, log.read_text()[-3000:]
        key = (app / ".longhaul" / "api-key").read_text().strip()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api}", headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            yield http, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
