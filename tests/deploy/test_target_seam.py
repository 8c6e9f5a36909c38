"""The target is one seam: nothing outside deploy/targets/ asks which kind an environment is (the environment model
included: what differs between kinds is a method of the kind's table, deploy/model/kinds.py), and every kind the
model names is a package whose `KIND` makes a whole kit (deploy/targets/kit.py)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from deploy.model.environments import TARGET_KINDS
from deploy.targets.kit import Kind
from tests.infra import ROOT

SWITCH = re.compile(r'target ?[!=]= ?"|target in \(|isinstance\([^)]*Target\)')
ALLOWED = ("deploy/targets/",)


def sources() -> list[Path]:
    return [ROOT / "cli.py", *sorted((ROOT / "deploy").rglob("*.py"))]


def switches(name: str, text: str) -> list[str]:
    """Lines that compare a target kind by name, and `.target` compared with anything (found by syntax: a switch
    written across lines, or against a variable)."""
    found = [
        f"{name}:{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), 1) if SWITCH.search(line)
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Attribute) and side.attr == "target" for side in sides):
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_the_targets_asks_for_the_kind() -> None:
    outside = {str(path.relative_to(ROOT)): path for path in sources()}
    outside = {name: path for name, path in outside.items() if not name.startswith(ALLOWED)}
    assert len(outside) > 40
    assert [hit for name, path in outside.items() for hit in switches(name, path.read_text())] == []


def test_the_check_finds_switches_however_written() -> None:
    text = (
        'if environment.target == "local":\n    pass\n'
        "ok = (\n    env.target\n    != kind\n)\n"
        "if isinstance(t, LocalTarget):\n    pass\n"
    )
    assert switches("x.py", text) == [
        'x.py:1: if environment.target == "local":',
        "x.py:7: if isinstance(t, LocalTarget):",
        "x.py:1: environment.target == 'local'",
        "x.py:4: env.target != kind",
    ]


def test_every_kind_named_by_the_model_is_a_package_with_its_kind() -> None:
    assert {"local", "kubeconfig", "gke"} <= set(TARGET_KINDS)
    for name, module in TARGET_KINDS.items():
        assert re.fullmatch(r"deploy\.targets\.[a-z_]+\.kind", module), (name, module)
        assert isinstance(importlib.import_module(module).KIND, Kind), name
