"""``longhaul init``: a new application, outside this repository, whose own tests pass and whose code is
lint-clean, for each example pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import LONGHAUL

BIN = Path(sys.executable).parent


def _outside_env() -> dict[str, str]:
    """A shell in the new application: nothing of this repository's settings or application."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LONGHAUL_"))}


@pytest.mark.parametrize("example", ["hello", "approval"])
def test_init_makes_an_application_whose_own_tests_pass(tmp_path: Path, example: str) -> None:
    made = subprocess.run(
        [LONGHAUL, "init", "my-app", "--example", example],
        cwd=tmp_path, env=_outside_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    app = tmp_path / "my-app"
    assert {"pyproject.toml", "Makefile", "README.md", ".ci", "deploy", "migrations", "tests"} <= {
        p.name for p in app.iterdir()
    }
    assert 'name = "my-app"' in (app / "pyproject.toml").read_text()
    linted = subprocess.run(
        [str(BIN / "ruff"), "check", "."], cwd=app, capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0, linted.stdout
    tested = subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider"],
        cwd=app, env=_outside_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert " passed" in tested.stdout and "failed" not in tested.stdout


def test_init_refuses_a_folder_in_use_and_a_bad_name(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    for args, said in (
        (["used"], "is not empty"),
        (["fresh", "--name", "My App"], "lower-case letters"),
        (["fresh", "--example", "nope"], "one of hello, approval"),
    ):
        refused = subprocess.run(
            [LONGHAUL, "init", *args],
            cwd=tmp_path,
            env=_outside_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine" and not (tmp_path / "fresh").exists()
