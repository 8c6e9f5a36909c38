"""One deploy policy (deploy/model/policy.py), applied by the Runner before anything is built or asked of a cluster
or cloud, for every command that changes what an environment runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from deploy import clients
from deploy.model.errors import ExitCode
from deploy.model.policy import DEPLOYS
from tests.helpers import k8sdeploy
from tests.infra import ROOT


def staging(tmp_path: Path, *lines: str) -> Path:
    """A gke environment that serves HTTPS (so plain HTTP is not what refuses it), with `lines` added."""
    path = tmp_path / "k8sdeploy.toml"
    table = ['tls_secret = "auth-suite-tls"', 'registry = "127.0.0.1:1/k8sdeploy"', *lines]
    gke = [
        'project = "my-project"',
        'location = "europe-west1-b"',
        'cluster = "c"',
        'node_service_account = "k8sdeploy-nodes@my-project.iam.gserviceaccount.com"',
    ]
    path.write_text("\n".join(["[environments.staging]", *table, "[environments.staging.gke]", *gke]) + "\n")
    return path


@pytest.fixture
def no_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("nothing may be asked of Google before the policy refuses")

    monkeypatch.setattr(clients, "google_apis", refuse)


def error_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


def test_dev_where_verify_is_set_is_refused_before_anything_is_built(tmp_path: Path, no_cloud: None) -> None:
    (tmp_path / "cosign.pub").write_text("not read: refused first\n")
    config = staging(tmp_path, 'verify = { key = "cosign.pub" }')
    result = k8sdeploy("dev", env="staging", config=config)
    assert result.exit_code == ExitCode.USAGE, result.output
    line = error_line(result.stderr)
    assert "environment staging sets verify, and `dev` deploys uncommitted work" in line
    assert "set dev = true in [environments.staging]" in line
    assert "version" not in result.stderr  # nothing was built


def test_dev_true_lets_dev_past_the_policy(tmp_path: Path, no_cloud: None) -> None:
    """Allowed, `dev` goes on to the cluster (here: Google, refused by the fixture), signing with the key."""
    config = staging(tmp_path, 'verify = { key = "cosign.pub" }', "dev = true")
    result = k8sdeploy("dev", env="staging", config=config)
    assert result.exit_code != ExitCode.USAGE
    assert "nothing may be asked of Google before the policy refuses" in result.stderr + str(result.exception)


def test_dev_on_a_local_gateway_beyond_loopback_is_refused_as_up_is(tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(
        '[environments.open]\nlocal = { gateway_address = "0.0.0.0" }\ndemo_users = false\ngateway_port = 1\n'
    )
    lines = {command: error_line(k8sdeploy(command, env="open", config=config).stderr) for command in ("up", "dev")}
    assert lines["dev"] == lines["up"]
    assert "would serve its gateway over plain HTTP on 0.0.0.0:1" in lines["dev"]


def admitted() -> set[str]:
    """The actions deploy/ admits: the literal argument of every `….admit("…")` call."""
    found = set()
    for path in (ROOT / "deploy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "admit":
                found |= {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
    return found


def test_every_deploy_goes_through_the_one_policy() -> None:
    """The commands that change what runs are up, dev, rollback and promote; each is admitted by the Runner (the
    refusals themselves: above, and tests/deploy/targets/kube/test_exposure.py for the first three)."""
    assert DEPLOYS == ("up", "dev", "rollback", "promote")
    assert admitted() == set(DEPLOYS)
    commands = (ROOT / "deploy" / "commands" / "deploy.py").read_text()
    assert "refuse_plain_http" not in commands and "policy" not in commands  # the commands only pass flags
