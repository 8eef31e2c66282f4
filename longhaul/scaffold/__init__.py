"""``longhaul init``: a new application with the project's layout, one example pipeline and its tests.

The files are templates in this package (``common/`` for every application, one folder per example),
named ``<file>.tmpl``; a path part ``dot-x`` becomes ``.x`` (packaging drops dot files). ``{{name}}``
and a few other markers are replaced; nothing else is templated, so the files read as what they become.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).parent
SUFFIX = ".tmpl"


@dataclass(frozen=True)
class Example:
    """One example pipeline: its folder of templates and how the catalog names it."""

    title: str
    module: str  # workflows.<module> declares it
    pipeline: str  # the Pipeline's name there


EXAMPLES = {
    "hello": Example(
        "a greeting after an optional durable wait, recorded once per run", "greetings", "GREETINGS"
    ),
    "approval": Example(
        "an expense that waits up to a day for a person's decision (a waitpoint)", "expenses", "EXPENSES"
    ),
}
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class ScaffoldError(ValueError):
    """The folder or the name cannot take a new application."""


def scaffold(folder: Path, *, name: str, example: str = "hello") -> list[Path]:
    """Write a new application into ``folder`` (empty or absent); the files written."""
    if not NAME.match(name):
        raise ScaffoldError(f"name '{name}': lower-case letters, digits and '-', starting with a letter")
    if example not in EXAMPLES:
        raise ScaffoldError(f"example '{example}': one of {', '.join(EXAMPLES)}")
    if folder.exists() and any(folder.iterdir()):
        raise ScaffoldError(f"{folder} is not empty")
    chosen = EXAMPLES[example]
    values = {
        "name": name,
        "title": name,
        "longhaul_version": _version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "catalog_imports": f"from workflows.{chosen.module} import {chosen.pipeline}",
        "catalog_entries": chosen.pipeline,
        "example_usage": (HERE / example / f"usage.md{SUFFIX}").read_text().strip(),
    }
    written = []
    for root in (HERE / "common", HERE / example):
        for template in sorted(root.rglob(f"*{SUFFIX}")):
            relative = template.relative_to(root)
            if relative.name == f"usage.md{SUFFIX}":
                continue
            target = folder / Path(*(_undotted(part) for part in relative.parts)).with_suffix("")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_render(template.read_text(), values))
            written.append(target)
    (folder / ".ci" / "run").chmod(0o755)
    return written


def _undotted(part: str) -> str:
    return "." + part.removeprefix("dot-") if part.startswith("dot-") else part


def _render(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda found: values[found.group(1)], text)


def _version() -> str:
    """The longhaul the application starts on (what its pyproject.toml asks for at least)."""
    try:
        return metadata.version("longhaul")
    except metadata.PackageNotFoundError:
        return "0.1.0"
