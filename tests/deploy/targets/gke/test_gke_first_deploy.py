"""A first deploy to a project with no cluster yet: what `up` checks before it creates anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import clients
from tests.deploy.targets.gke.conftest import ENV, Cloud, config_file
from tests.helpers import k8sdeploy


def with_tls(config: Path) -> Path:
    text = config.read_text().replace("allow_plain_http = true", 'tls_secret = "auth-tls"\nhosts = ["auth.test"]')
    config.write_text(text)
    return config


def test_up_without_its_tls_secret_stops_before_a_cluster_is_created(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Secret cannot be in a cluster that does not exist yet: `up` says how to give the certificate instead
    (exit 2), before anything is built, and GKE is asked nothing but whether the cluster is there."""
    monkeypatch.setattr(clients, "google_apis", cloud.apis)
    config = with_tls(config_file(tmp_path / "k.toml", cloud.namespace))
    result = k8sdeploy("up", env=ENV, config=config)
    assert result.exit_code == 2, result.stderr
    assert "not ready to deploy: no kubernetes.io/tls Secret auth-tls in namespace" in result.stderr
    assert "set $K8SDEPLOY_TLS_CERT and $K8SDEPLOY_TLS_KEY" in result.stderr
    assert cloud.gke.mutating_requests() == [] and cloud.compute.mutating_requests() == []
    assert cloud.gke.clusters == {}
    assert "building" not in result.stderr


def test_doctor_names_the_missing_secret_and_a_certificate_for_another_name(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "google_apis", cloud.apis)
    config = with_tls(config_file(tmp_path / "k.toml", cloud.namespace))
    result = k8sdeploy("doctor", "--output", "json", env=ENV, config=config)
    assert result.exit_code == 11, result.stderr
    from tests.helpers import valid

    document = valid(result.stdout)
    tls = [finding for finding in document["findings"] if finding["check"] == "tls"]
    assert document["result"] == "lacking" and len(tls) == 1 and not tls[0]["ok"]
    assert cloud.gke.mutating_requests() == [] and cloud.compute.mutating_requests() == []
