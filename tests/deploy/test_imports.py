"""deploy/'s modules import one another without a circle: every import counts, a function's own included (a local
import is how a circle hides), so the modules can be read, and replaced, from the bottom up."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from tests.infra import ROOT


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(text: str, known: set[str]) -> set[str]:
    """The modules of `known` that a module's text imports (`from P import M` counts M when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def circle(graph: dict[str, set[str]]) -> list[str]:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        return list(error.args[1])
    return []


def test_deploy_has_no_import_circle() -> None:
    paths = sorted((ROOT / "deploy").rglob("*.py"))
    texts = {module_name(path): path.read_text() for path in paths}
    known = set(texts)
    assert len(known) > 80
    graph = {name: imports(text, known) - {name} for name, text in texts.items()}
    assert circle(graph) == []


def test_the_check_finds_a_circle_through_a_local_import() -> None:
    known = {"deploy.a", "deploy.b"}
    graph = {
        "deploy.a": imports("from deploy import b\n", known),
        "deploy.b": imports("def f():\n    from deploy.a import thing\n", known),
    }
    assert sorted(set(circle(graph))) == ["deploy.a", "deploy.b"]


def test_the_tool_imports_nothing_of_the_suite() -> None:
    """deploy/ and the suite's services share suitekit/ only: the tool can change without the product it deploys."""
    found = []
    for path in [ROOT / "cli.py", *sorted((ROOT / "deploy").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for name in names if name.split(".")[0] == "services"]
    assert found == []
