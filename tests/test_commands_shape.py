"""The command line stays thin (issue #28): functions that fit on a screen, BuildOptions made in one place, and every
`--output json` document made by deploy/output.py. Read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.infra import ROOT

LONGEST = 40  # lines, from the `def` line to the last line (decorators not counted)
COMMANDS = ROOT / "deploy" / "commands"


def command_line() -> dict[Path, ast.Module]:
    paths = [ROOT / "cli.py", *sorted(COMMANDS.glob("*.py"))]
    return {path: ast.parse(path.read_text(), str(path)) for path in paths}


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def too_long(trees: dict[Path, ast.Module]) -> list[str]:
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONGEST:
                    found.append(f"{where(path, node)} {node.name} is {length} lines (at most {LONGEST})")
    return found


def calls_of(trees: dict[Path, ast.Module], name: str) -> list[tuple[Path, ast.Call]]:
    """Calls of `name` or of `anything.name`."""
    return [
        (path, node)
        for path, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).rpartition(".")[2] == name
    ]


def enclosing_function(tree: ast.Module, call: ast.Call) -> str:
    functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.lineno <= call.lineno <= (node.end_lineno or node.lineno)
    ]
    return max(functions, key=lambda node: node.lineno).name if functions else "<module>"


def test_the_command_line_is_a_package_and_cli_py_only_its_entry_point() -> None:
    trees = command_line()
    assert len(trees) >= 8, sorted(str(path) for path in trees)
    lines = len((ROOT / "cli.py").read_text().splitlines())
    assert lines <= 15, f"cli.py is {lines} lines: its commands belong in deploy/commands/"
    assert not (ROOT / "deploy" / "commandline.py").exists()


def test_no_function_of_the_command_line_is_over_40_lines() -> None:
    found = too_long(command_line())
    assert not found, "\n".join(found)


def test_a_long_function_is_named_with_its_length() -> None:
    body = "\n".join(f"    x = {i}" for i in range(LONGEST))
    tree = ast.parse(f"def fits():\n    pass\n\n\ndef sprawls():\n{body}\n")
    assert too_long({ROOT / "cli.py": tree}) == [f"cli.py:5 sprawls is {LONGEST + 1} lines (at most {LONGEST})"]


def test_build_options_are_made_in_one_place() -> None:
    trees = command_line()
    made = [
        f"{where(path, call)} in {enclosing_function(trees[path], call)}"
        for path, call in calls_of(trees, "BuildOptions")
    ]
    assert len(made) == 1 and "deploy/commands/common.py" in made[0] and made[0].endswith(" in build_options"), made


def test_every_json_document_is_made_by_deploy_output() -> None:
    """A command prints its `--output json` document with print_document(report.NAME(...)), NAME a function of
    deploy/output.py; only print_document itself calls dumps."""
    trees = command_line()
    output = ast.parse((ROOT / "deploy" / "output.py").read_text())
    documents = {node.name for node in output.body if isinstance(node, ast.FunctionDef)}
    printed = calls_of(trees, "print_document")
    assert len(printed) >= 10
    inline = [
        f"{where(path, call)} in {enclosing_function(trees[path], call)}: {ast.unparse(call)}"
        for path, call in printed
        if not (
            len(call.args) == 1
            and isinstance(call.args[0], ast.Call)
            and isinstance(call.args[0].func, ast.Attribute)
            and ast.unparse(call.args[0].func.value) == "report"
            and call.args[0].func.attr in documents
        )
    ]
    assert not inline, "\n".join(inline)
    dumped = [
        f"{where(path, call)} in {enclosing_function(trees[path], call)}" for path, call in calls_of(trees, "dumps")
    ]
    assert len(dumped) == 1 and dumped[0].startswith("deploy/commands/common.py:"), dumped
    assert dumped[0].endswith(" in print_document"), dumped
