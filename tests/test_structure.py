"""The shape of the code: no import cycle in segattn/, and no file over ~300 lines in segattn/ or
tools/ without its reason at its top. `python -m pytest tests/test_structure.py` is the check."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "segattn"
MAX_LINES = 320  # "about 300": a few lines of slack, not a second size
REASON = "Why over 300 lines:"  # in the first lines of a longer file, followed by the reason


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The segattn modules that `path` imports anywhere in it (a function-level import that dodges a
    cycle is still one). `from a import b` counts a.b when that is a module, else a; a package's
    parents, which Python imports first, are not counted (every module would then import all)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    return {module_name(path): imported_modules(path, modules) for path in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "segattn.cli" in graph and "segattn.commands.demo" in graph["segattn.cli"]  # the graph is read
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_cycle_search_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("folder", ["segattn", "tools"])
def test_long_files_say_why_at_their_top(folder):
    long = []
    for path in sorted((REPO / folder).rglob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES and not any(REASON in line for line in lines[:40]):
            long.append(f"{path.relative_to(REPO)} ({len(lines)} lines)")
    assert not long, f"over {MAX_LINES} lines without '{REASON} ...' at the top: {', '.join(long)}"


def test_the_readme_layout_names_every_file_and_folder():
    """The README's Layout block names every top-level file and folder, every module of segattn/
    and every script in tools/ (by its name, with or without .py)."""
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout\n\n```\n", 1)[1].split("```", 1)[0]
    words = set(re.findall(r"[\w.]+", layout))
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    top = {path.split("/", 1)[0] for path in tracked}
    missing = [name for name in sorted(top) if name not in words]
    modules = [*PACKAGE.rglob("*.py"), *(REPO / "tools").glob("*.py")]
    missing += [
        str(path.relative_to(REPO))
        for path in sorted(modules)
        if path.name != "__init__.py" and path.name not in words and path.stem not in words
    ]
    assert len(top) > 5 and not missing, f"README's Layout does not name: {', '.join(missing)}"
