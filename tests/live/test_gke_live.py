"""The gke target against a real Google Cloud project, end to end through the CLI: the six images built and
pushed to Artifact Registry, a new one-node cluster, the real single-pod render applied, waited for, the
smoke login through the LoadBalancer, then `down` and the Compute audit (exit 7 if anything is left).

Skipped unless K8SDEPLOY_LIVE_PROJECT names a project (the only allowed skip). Run it as

    K8SDEPLOY_LIVE_PROJECT=my-project \\
    K8SDEPLOY_LIVE_REGISTRY=europe-west1-docker.pkg.dev/my-project/k8sdeploy-live \\
    .venv/bin/python -m pytest tests/live -p no:cacheprovider

in a project with three APIs enabled:

    gcloud services enable container.googleapis.com compute.googleapis.com artifactregistry.googleapis.com

a node service account (K8SDEPLOY_LIVE_NODE_ACCOUNT, default k8sdeploy-nodes@PROJECT.iam.gserviceaccount.com)
with roles/artifactregistry.reader, roles/logging.logWriter and roles/monitoring.metricWriter, and application
default credentials (GOOGLE_APPLICATION_CREDENTIALS) of an account that has the roles docs/targets.md lists for
the gke target: roles/container.admin, roles/compute.securityAdmin, roles/compute.viewer,
roles/iam.serviceAccountUser on the node service account, and roles/artifactregistry.admin (the first run
creates the repository K8SDEPLOY_LIVE_REGISTRY names; roles/artifactregistry.writer on it is enough once it
exists). Optional: K8SDEPLOY_LIVE_LOCATION (default europe-west1-b). It takes up to an hour (a cluster create
is up to 15 minutes, its delete as long) and deletes what it created even when a step fails: `down` first waits
for a create still running.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.helpers import k8sdeploy

PROJECT = os.environ.get("K8SDEPLOY_LIVE_PROJECT", "")
REGISTRY = os.environ.get("K8SDEPLOY_LIVE_REGISTRY", f"europe-west1-docker.pkg.dev/{PROJECT}/k8sdeploy-live")
LOCATION = os.environ.get("K8SDEPLOY_LIVE_LOCATION", "europe-west1-b")
NODE_ACCOUNT = os.environ.get("K8SDEPLOY_LIVE_NODE_ACCOUNT", f"k8sdeploy-nodes@{PROJECT}.iam.gserviceaccount.com")
pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(not PROJECT, reason="set K8SDEPLOY_LIVE_PROJECT to a project to run live tests"),
]
ENV = "live"


def test_up_smoke_login_then_down_leaves_nothing(tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(
        "\n".join(
            [
                f"[environments.{ENV}]",
                'layout = "single-pod"',
                'service_type = "LoadBalancer"',
                f'registry = "{REGISTRY}"',
                "allow_plain_http = true",
                f"[environments.{ENV}.gke]",
                f'project = "{PROJECT}"',
                f'location = "{LOCATION}"',
                f'cluster = "k8sdeploy-live-{uuid.uuid4().hex[:6]}"',
                'machine_type = "e2-standard-2"',
                f'node_service_account = "{NODE_ACCOUNT}"',
            ]
        )
        + "\n"
    )
    try:
        up = k8sdeploy("up", "--allow-dirty", "--wait-timeout", "900", "--output", "json", env=ENV, config=config)
        assert up.exit_code == 0, up.stderr
        document = json.loads(up.stdout)
        assert all(
            ref.startswith(f"{REGISTRY}/") and "@sha256:" in ref
            for ref in (image["ref"] for image in document["images"].values())
        )
        assert document["durations"]["smoke"] > 0 and document["url"].startswith("http://")
        again = k8sdeploy("up", "--allow-dirty", "--wait-timeout", "900", env=ENV, config=config)
        assert again.exit_code == 0 and "nothing to record" in again.stderr, again.stderr
    finally:
        down = k8sdeploy("down", "--yes", env=ENV, config=config)
    assert down.exit_code == 0, down.stderr  # 7 names what is left in Compute
    assert k8sdeploy("down", "--yes", env=ENV, config=config).stdout == ""
