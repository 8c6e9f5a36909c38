"""The names GKE gives a Service's load-balancer pieces (deploy/targets/gke/naming.py), against ingress-gce's own
expectations: the vectors of pkg/utils/namer/l4_namer_test.go (TestL4Namer, kube-system UID "kubesystem-uid1"
from frontendnamer_test.go), so that the audit looks for what GKE really makes."""

from __future__ import annotations

import pytest

from deploy.targets.gke.naming import ClusterIds, content_hash, suffixed, trim_fields_evenly

IDS = ClusterIds(content_hash("kubesystem-uid1", 8), "0123456789abcdef")
LONG_NAMESPACE = "012345678901234567890123456789012345678901234567890123456789abc"
LONG_NAME = "012345678901234567890123456789012345678901234567890123456789pqr"


@pytest.mark.parametrize(
    ("namespace", "name", "backend", "health_check_rule"),
    [
        ("namespace", "name", "k8s2-7kpbhpki-namespace-name-956p2p7x", "k8s2-7kpbhpki-namespace-name-956p2p7x-fw"),
        (
            LONG_NAMESPACE,
            LONG_NAME,
            "k8s2-7kpbhpki-01234567890123456789-0123456789012345678-hwm400mg",
            "k8s2-7kpbhpki-01234567890123456789-0123456789012345678-hwm40-fw",  # cut to fit 63 characters
        ),
    ],
)
def test_l4_names_are_ingress_gces(namespace: str, name: str, backend: str, health_check_rule: str) -> None:
    assert IDS.l4_uid == "7kpbhpki"
    assert IDS.l4_backend(namespace, name) == backend
    assert suffixed(backend, "-fw") == health_check_rule
    service = {"metadata": {"namespace": namespace, "name": name, "uid": "0b8e4e4f-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}}
    assert IDS.service_names(service) == ["a0b8e4e4f1c2d4e5f8a9b0c1d2e3f4a5", backend, health_check_rule]


def test_shared_health_checks_of_both_kinds() -> None:
    assert IDS.shared() == ["k8s-0123456789abcdef-node", "k8s2-7kpbhpki-l4-shared-hc"]
    assert ClusterIds().shared() == [] and ClusterIds().service_names({"metadata": {"uid": "a-b"}}) == ["aab"]


def test_fields_are_trimmed_in_proportion_to_their_lengths() -> None:
    assert trim_fields_evenly(39, "namespace", "name") == ["namespace", "name"]
    assert [len(f) for f in trim_fields_evenly(39, LONG_NAMESPACE, LONG_NAME)] == [20, 19]
    assert [len(f) for f in trim_fields_evenly(20, "a" * 30, "b" * 10)] == [15, 5]
