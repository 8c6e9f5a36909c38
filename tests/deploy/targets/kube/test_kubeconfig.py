"""The kubeconfig k8sdeploy reads itself (deploy/targets/kube/kubeconfig.py), each kind of credential against the
real API server: a client certificate inline, a token file read at each request, two files of $KUBECONFIG merged,
and a user whose token an `exec` plugin prints (run by the `kubernetes` library)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from deploy.model.errors import ConfigError, CredentialsError
from deploy.targets.kube import NAMESPACE
from deploy.targets.kube.kubeconfig import kubeconfig_api
from tests.controlplane import KubeCluster


def cluster_entry(kube: KubeCluster) -> dict:
    return {
        "name": "real",
        "cluster": {"server": kube.server, "certificate-authority": str(kube.cluster.state / "pki/ca.crt")},
    }


def write(path: Path, users: list[dict], clusters: list[dict], current: str = "test") -> Path:
    contexts = [{"name": "test", "context": {"cluster": "real", "user": "tester"}}]
    config = {"apiVersion": "v1", "kind": "Config", "current-context": current, "clusters": clusters}
    path.write_text(yaml.safe_dump({**config, "users": users, "contexts": contexts}))
    return path


def can_read(path: Path | None = None, context: str = "") -> bool:
    return kubeconfig_api(context, path).get(NAMESPACE, "", "default") is not None


def test_the_control_planes_own_kubeconfig_with_an_inline_client_certificate(kube: KubeCluster) -> None:
    assert "client-certificate-data" in kube.cluster.kubeconfig.read_text()
    assert can_read(kube.cluster.kubeconfig)


def test_a_token_file_is_read_at_each_request(kube: KubeCluster, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("kubeconfig-token\n")
    api = kubeconfig_api(
        "", write(tmp_path / "config", [{"name": "tester", "user": {"tokenFile": "token"}}], [cluster_entry(kube)])
    )
    assert api.get(NAMESPACE, "", "default") is not None
    token.write_text("no-such-token\n")  # rotated to one the API server does not know
    with pytest.raises(CredentialsError):
        api.get(NAMESPACE, "", "default")


def test_the_files_of_kubeconfig_are_merged(kube: KubeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = write(tmp_path / "users", [{"name": "tester", "user": {"token": "kubeconfig-token"}}], [], current="")
    clusters = write(tmp_path / "clusters", [], [cluster_entry(kube)])
    monkeypatch.setenv("KUBECONFIG", f"{users}:{tmp_path / 'absent'}:{clusters}")
    assert can_read()
    with pytest.raises(ConfigError, match="cannot use kubeconfig context nope .*no context 'nope'"):
        kubeconfig_api("nope")


def test_an_exec_plugins_token(kube: KubeCluster, tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "kubeconfig-token"},
    }
    plugin = tmp_path / "plugin.py"
    plugin.write_text(f"import json\nprint(json.dumps({json.dumps(credential)}))\n")
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin)],
            "interactiveMode": "Never",
        }
    }
    assert can_read(write(tmp_path / "config", [{"name": "tester", "user": user}], [cluster_entry(kube)]))


def test_requests_name_k8sdeploy_as_their_user_agent(kube: KubeCluster) -> None:
    """The API server's audit log says which tool wrote (the peers bench tells tools apart by their users)."""
    api = kubeconfig_api("", kube.cluster.kubeconfig)
    api.apply(NAMESPACE, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kube.namespace}})
    events = [json.loads(line) for line in kube.cluster.audit_log.read_text().splitlines()]
    agents = {e.get("userAgent", "") for e in events if (e.get("objectRef") or {}).get("name") == kube.namespace}
    assert agents and all(agent.startswith("k8sdeploy/") for agent in agents), agents
