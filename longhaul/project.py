"""The application longhaul serves: the folder whose ``pyproject.toml`` has a ``[tool.longhaul]`` table.

longhaul is a library; the pipelines are the application's. ``longhaul dev``, ``api``, ``worker`` and
``dispatcher`` started in the application's folder (or below it) find it here, read its settings from that
table (``catalog = "workflows.catalog:CATALOG"``, ``commands = ...``; environment variables win) and import
its modules from that folder, installed or not. ``LONGHAUL_APP_DIR`` names the folder for a process
started elsewhere (a service unit, a test).
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

APP_DIR_VARIABLE = "LONGHAUL_APP_DIR"


def app_dir() -> Path | None:
    """The application's folder: ``LONGHAUL_APP_DIR``, else the nearest folder from the working directory up
    whose ``pyproject.toml`` has a ``[tool.longhaul]`` table; None outside any application."""
    found = _application()
    return found[0] if found is not None else None


def app_settings() -> dict[str, Any]:
    """The application's ``[tool.longhaul]`` table: settings by name (``catalog``, ``commands``, ...)."""
    found = _application()
    return found[1] if found is not None else {}


def _application() -> tuple[Path, dict[str, Any]] | None:
    """The application's folder and its ``[tool.longhaul]`` table (empty for a named folder without one),
    read once for both."""
    named = os.environ.get(APP_DIR_VARIABLE)
    start = Path(named).resolve() if named else Path.cwd()
    for folder in (start, *start.parents):
        table = _tool_tables(folder / "pyproject.toml").get("longhaul")
        if isinstance(table, dict):
            return folder, table
        if named:  # a named folder is the application, with or without a table
            return start, {}
    return None


def import_object(path: str) -> Any:
    """The object named ``module:attribute``, imported from the application's folder first."""
    module_name, _, attribute = path.partition(":")
    folder = app_dir()
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"'{path}': module {module_name} has no '{attribute}'") from None


def _tool_tables(pyproject: Path) -> dict[str, Any]:
    try:
        with pyproject.open("rb") as file:
            tool = tomllib.load(file).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return tool if isinstance(tool, dict) else {}
