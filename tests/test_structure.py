"""The shape of the code (docs/architecture.md): the engine (``longhaul``) imports nothing outside itself,
the application's imports go one way (starters → workflows → activities and providers → longhaul), and
nothing imports in a circle."""

from __future__ import annotations

import ast
import builtins
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# The application's layers over the engine (layer 0); a module may import its own layer and those below.
LAYERS = {"longhaul": 0, "providers": 1, "activities": 1, "workflows": 2, "starters": 3, "bench": 4}


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            if "versions" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """First-party modules ``path`` imports (at the top or inside functions)."""
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports that module; `from module import name`, the module.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [s for s in submodules if s in MODULES] or [node.module]
        yield from (name for name in names if name in MODULES)


GRAPH = {module: set(_imports(path)) - {module} for module, path in MODULES.items()}


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_one_way(module: str) -> None:
    upward = sorted(i for i in GRAPH[module] if _layer(i) > _layer(module))
    assert upward == [], f"{module} imports a layer above it"


def test_no_module_imports_itself_through_others() -> None:
    cycles = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_engine_imports_nothing_outside_itself() -> None:
    """``longhaul`` is a library: it names no pipeline, no starter and no provider of this repository."""
    engine = [m for m in MODULES if m.split(".")[0] == "longhaul"]
    assert len(engine) > 80  # the walk found the engine
    outside = {m: sorted(i for i in GRAPH[m] if i.split(".")[0] != "longhaul") for m in engine}
    assert {m: found for m, found in outside.items() if found} == {}


def test_pipelines_use_the_engine_through_its_one_import_point() -> None:
    """The shipped pipelines are written as any author's would be: from ``longhaul.sdk`` alone."""
    pipelines = [m for m in MODULES if m.split(".")[0] in ("workflows", "activities")]
    beside = {
        m: sorted(i for i in GRAPH[m] if i.startswith("longhaul") and i != "longhaul.sdk") for m in pipelines
    }
    assert {m: found for m, found in beside.items() if found} == {}


def test_the_code_in_docs_events_md_names_only_what_exists() -> None:
    """The recipe for a pipeline is followed word for word: every name its snippets use is defined in the
    code (or by the snippet itself)."""
    defined = set(dir(builtins)) | {"Field", "Callable", "Any", "workflow", "Client", "open"}
    defined |= {module.rsplit(".", 1)[-1] for module in MODULES}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined |= {t.id for t in targets if isinstance(t, ast.Name)}
    text = (ROOT / "docs" / "events.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    snippets = [ast.parse(textwrap.dedent(block)) for block in blocks]
    assert len(snippets) >= 4
    for snippet in snippets:
        own = {n.id for n in ast.walk(snippet) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        own |= {n.name for n in ast.walk(snippet) if isinstance(n, ast.ClassDef | ast.AsyncFunctionDef)}
        own |= {n.name for n in ast.walk(snippet) if isinstance(n, ast.FunctionDef)}
        own |= {a.arg for n in ast.walk(snippet) if isinstance(n, ast.arguments) for a in n.args}
        used = {n.id for n in ast.walk(snippet) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert used - own - defined == set(), ast.unparse(snippet)[:200]


def test_the_python_client_loads_httpx_and_pydantic_not_the_engine() -> None:
    """``import longhaul.client`` (and its wire models, longhaul.models) is light enough to publish on its
    own: no SQLAlchemy, no Temporal SDK, no web framework."""
    loaded = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import longhaul.client"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stderr  # fmt: skip
    tops = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in loaded.splitlines() if "|" in line}
    assert {"httpx", "pydantic", "longhaul"} <= tops
    assert tops & {"sqlalchemy", "temporalio", "fastapi", "alembic", "asyncpg", "aiosqlite"} == set()
