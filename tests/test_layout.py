"""The package's shape, read from its own imports: stage packages in pipeline order, no import
circles, a sandbox side that imports nothing of ours, one entry point, modules small enough to read.

The order is the one written at the top of ``src/codedpo/__init__.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "codedpo"
SHARED = ("codedpo.io", "codedpo.records", "codedpo.verbs")
STAGES = ("problems", "models", "sampling", "execution", "pairs", "training", "evaluation",
          "reporting", "workflow")  # fmt: skip
SANDBOX = "codedpo.execution.sandbox"
# The wire format of values both sides of the sandbox share: the problems file encodes its values
# with it, so it is the one module of a later stage that earlier stages import.
CODEC = f"{SANDBOX}.codec"
# "about 500 lines": the worker inside the sandbox is one file on purpose (it is loaded by path).
MAX_LINES = 550


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every ``codedpo`` module that ``path`` imports, at any depth (function-level too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` imports the module; ``from module import name``
            # the module
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("codedpo") and name != "codedpo":
                found.add(name)
    return found


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def rank(module: str) -> int:
    """0: shared helpers; 1..: the stages in pipeline order; then the command line."""
    if module in SHARED or module == "codedpo":
        return 0
    stage = module.split(".")[1]
    if stage in STAGES:
        return 1 + STAGES.index(stage)
    assert module in ("codedpo.cli", "codedpo.__main__"), f"{module}: in no stage package"
    return len(STAGES) + 1


def test_every_module_lives_in_a_stage_package_or_is_shared():
    top = sorted(m for m in MODULES if m.count(".") == 1 and m.split(".")[1] not in STAGES)
    assert top == sorted(["codedpo.__main__", "codedpo.cli", *SHARED])


def test_a_stage_imports_only_earlier_stages_and_the_shared_helpers():
    wrong = [
        f"{module} imports {other}"
        for module, others in GRAPH.items()
        for other in others
        if other != CODEC and rank(other) > rank(module)
    ]
    assert wrong == []


def test_only_the_command_line_imports_the_workflow_package():
    importers = {m for m, others in GRAPH.items() for o in others if
    o.startswith("codedpo.workflow")}
    assert {m for m in importers if not m.startswith("codedpo.workflow")} <= {"codedpo.cli"}


def test_no_import_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "execution" / "sandbox").glob("*.py")), ids=lambda p: p.name
)
def test_the_sandbox_side_imports_only_the_standard_library_and_its_own_folder(path: Path):
    siblings = {p.stem for p in path.parent.glob("*.py")}
    outside = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else ["<relative>"]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in siblings:
                outside.add(name)
    assert outside == set()


def test_the_isolation_backends_bind_the_whole_sandbox_side():
    from codedpo.execution.backends import HARNESS_DIR, HARNESS_FILES

    on_disk = {p.name for p in HARNESS_DIR.glob("*.py")} - {"__init__.py"}
    assert set(HARNESS_FILES) == on_disk


def test_modules_are_small_enough_to_read():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}


def test_one_entry_point_idiom():
    """Verbs are ``main(argv)`` functions the CLI dispatches to; no module runs as a script
    except the sandbox's worker (started by path inside the sandbox) and ``python -m codedpo``."""
    scripts = sorted(
        m for m, p in MODULES.items() if 'if __name__ == "__main__"' in p.read_text()
    )
    assert scripts == [f"{SANDBOX}.harness"]


def test_every_verb_names_a_module_with_main():
    import importlib

    from codedpo.cli import COMMANDS

    for verb, module in COMMANDS.items():
        assert callable(getattr(importlib.import_module(module), "main", None)), verb
