"""The package structure of deploy/: the dependency arrows point one way, and clients are made in clients.py (and
compose.py, which asks it for them) only.

Read from the source with `ast` (every import counts, the lazy ones inside functions too), so a test run sees
the structure a newcomer reads from `ls deploy/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.infra import ROOT

PACKAGE = ROOT / "deploy"
# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = (
    ("deploy.model",),
    ("deploy.googleapi",),
    ("deploy.registry",),
    ("deploy.render",),
    ("deploy.builders",),
    ("deploy.attest",),
    ("deploy.publish",),
    ("deploy.smoke", "deploy.users", "deploy.identity", "deploy.tls", "deploy.doctor"),
    ("deploy.targets",),
    ("deploy.schema_moves",),
    ("deploy.runner",),
    ("deploy.dev",),
    ("deploy.output",),
    ("deploy.clients",),
    ("deploy.context",),
    ("deploy.stages",),
    ("deploy.compose",),
    ("deploy.commands", "deploy.loopback", "deploy.crash"),
)
# Calls that make a client: only the composition root makes them (the factories they name are called there), and
# each target kind the clients of its own API, in its kind.py, from what the root's Clients give it.
CLIENT_FACTORIES = (
    "docker.from_env",
    "RegistryClient",
    "rest_client",
    "AuthorizedSession",
    "kubeconfig_api",
    "kube_api_for",
    "Clients",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def deploy_imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "deploy"}
        elif isinstance(node, ast.ImportFrom) and node.module == "deploy":  # from deploy import output, __version__
            found |= {f"deploy.{alias.name}" if is_module(alias.name) else "deploy" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "deploy":
            assert node.level == 0, f"relative import of {node.module}: deploy/ imports absolutely"
            found.add(node.module)
    return found


def is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").exists() or (PACKAGE / name / "__init__.py").exists()


def layer_of(module: str) -> int:
    if module == "deploy":  # deploy/__init__.py holds the version and imports nothing
        return 0
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def upward_imports(trees: dict[str, ast.Module]) -> list[str]:
    return [
        f"{name} imports {imported}"
        for name, tree in trees.items()
        for imported in sorted(deploy_imports(tree))
        if layer_of(imported) > layer_of(name)
    ]


def test_every_module_is_in_a_layer_and_imports_only_its_own_and_lower_layers() -> None:
    assert upward_imports(modules()) == []


def test_an_upward_import_is_found_even_inside_a_function() -> None:
    lazy = ast.parse("def f():\n    from deploy.runner import Runner\n    from deploy import output, __version__\n")
    assert upward_imports({"deploy.builders.spec": lazy, "deploy.compose": lazy}) == [
        "deploy.builders.spec imports deploy.output",
        "deploy.builders.spec imports deploy.runner",
    ]


def test_model_imports_nothing_else_of_deploy() -> None:
    found = {
        name: sorted(i for i in deploy_imports(tree) if not i.startswith("deploy.model"))
        for name, tree in modules().items()
        if name.startswith("deploy.model")
    }
    assert len(found) >= 8 and {name: imports for name, imports in found.items() if imports} == {}


def test_no_builder_imports_a_publisher() -> None:
    found = {
        name: sorted(i for i in deploy_imports(tree) if i.startswith("deploy.publish"))
        for name, tree in modules().items()
        if name.startswith("deploy.builders")
    }
    assert len(found) >= 8 and {name: imports for name, imports in found.items() if imports} == {}


def called_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            names.add(ast.unparse(node.func))
    return names


def test_clients_are_made_in_clients_compose_and_the_kinds_only() -> None:
    makers = {name: sorted(called_names(tree) & set(CLIENT_FACTORIES)) for name, tree in modules().items()}
    root = ("deploy.clients", "deploy.compose")
    kinds = {name for name in makers if re.fullmatch(r"deploy\.targets\.[a-z_]+\.kind", name)}
    assert set(makers["deploy.clients"]) | set(makers["deploy.compose"]) | {
        call for name in kinds for call in makers[name]
    } == set(CLIENT_FACTORIES)
    assert makers["deploy.compose"] == ["Clients"]  # compose asks deploy/clients.py for every other client
    assert makers["deploy.targets.kube.kind"] == ["kubeconfig_api"]  # a kubeconfig context's API server
    assert makers["deploy.targets.gke.kind"] == ["AuthorizedSession", "kube_api_for", "rest_client"]
    assert {name: calls for name, calls in makers.items() if calls and name not in {*root, *kinds}} == {}
    cli = called_names(ast.parse((ROOT / "cli.py").read_text()))
    assert cli & set(CLIENT_FACTORIES) == set()
    commands = {name: calls for name, calls in makers.items() if name.startswith("deploy.commands")}
    assert len(commands) >= 7 and {name: calls for name, calls in commands.items() if calls} == {}


def test_no_arrow_runs_back_up_inside_the_targets() -> None:
    """The seam (deploy/targets/__init__.py, kit.py) names no kind's package; a kind may use the kube package
    (gke runs kube's target inside its cluster), no other kind's, and kube uses none."""
    trees = modules()
    seam = ("deploy.targets", "deploy.targets.kit")
    found = [
        f"{name} imports {imported}"
        for name, tree in trees.items()
        if name.startswith("deploy.targets")
        for imported in sorted(deploy_imports(tree))
        if imported.startswith("deploy.targets.")
        and imported not in seam
        and (name in seam or package_of(imported) not in (package_of(name), "kube"))
    ]
    assert found == []


def package_of(module: str) -> str:
    return module.split(".")[2] if module.count(".") >= 2 else ""


SCREEN = 60  # lines: a function longer than this is split along a seam of its own


def long_functions(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > SCREEN
    ]


def test_no_function_of_the_tool_or_the_suite_is_longer_than_a_screen() -> None:
    assert [found for root in ("deploy", "services", "suitekit") for found in long_functions(ROOT / root)] == []


def test_a_long_function_is_found(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("async def f():\n" + "    x = 1\n" * SCREEN)
    assert [line.split(" ", 1)[1] for line in long_functions(tmp_path)] == ["f (61 lines)"]
