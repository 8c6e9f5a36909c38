"""The gke target against a real Google Cloud project: up, ready, down, and nothing left.

Skipped unless K8SDEPLOY_LIVE_PROJECT names a project (the only allowed skip). Optional:
K8SDEPLOY_LIVE_LOCATION (default europe-west1-b). It creates a one-node cluster named
k8sdeploy-live-<random> and deletes it again; credentials come from application default credentials.
"""

from __future__ import annotations

import os
import uuid

import pytest

from deploy.compose import make_target
from deploy.environments import Environment, Gke

PROJECT = os.environ.get("K8SDEPLOY_LIVE_PROJECT", "")
pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not PROJECT, reason="set K8SDEPLOY_LIVE_PROJECT to a project to run live tests")]
ENV = "live"


def objects() -> list[dict]:
    """A public image behind a LoadBalancer Service: enough to make GKE create the cloud pieces."""
    labels = {"app.kubernetes.io/name": "nginx-lua", "app.kubernetes.io/instance": ENV,
              "app.kubernetes.io/managed-by": "k8sdeploy", "app.kubernetes.io/part-of": "auth-suite"}
    selector = {"app.kubernetes.io/name": "nginx-lua", "app.kubernetes.io/instance": ENV}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gateway", "labels": labels},
         "spec": {"type": "LoadBalancer", "selector": selector, "ports": [{"port": 8080, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gateway", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                      {"name": "nginx-lua", "image": "nginxinc/nginx-unprivileged:1.27-alpine",
                       "ports": [{"containerPort": 8080}]}]}}}},
    ]


def test_up_then_down_leaves_nothing() -> None:
    gke = Gke(project=PROJECT, location=os.environ.get("K8SDEPLOY_LIVE_LOCATION", "europe-west1-b"),
              cluster=f"k8sdeploy-live-{uuid.uuid4().hex[:6]}")
    environment = Environment(name=ENV, target="gke", service_type="LoadBalancer", gke=gke)
    target = make_target(environment, print)
    try:
        target.apply(objects())
        target.wait(timeout=600)
        assert target.gateway_url().startswith("http://")
        assert not target.apply(objects()).changed
    finally:
        target.down()  # raises LeftoversError (exit 7) if anything of it is left
    assert target.down() == ()
