"""The NetworkPolicies admit exactly the calls the suite makes, evaluated as Kubernetes evaluates them.

The evaluator follows networking.k8s.io/v1 for what our policies may use (pod and namespace selectors,
TCP ports) and fails on anything else, so a policy it cannot judge never passes unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.deploy.inputs import VARIANTS, of_kind, pod_templates, render_variant

ANYWHERE = "anywhere"


@dataclass(frozen=True)
class Source:
    """Who opens a connection: a pod (namespace and labels), or an address outside the cluster."""

    name: str
    namespace: str | None = None  # None: not a pod
    labels: dict[str, str] = field(default_factory=dict, hash=False)


def matches(selector: dict, labels: dict[str, str]) -> bool:
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    assert not unknown and not selector.get("matchExpressions"), f"evaluator does not handle {selector}"
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def peer_admits(peer: dict, source: Source, policy_namespace: str) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector"}, f"evaluator does not handle {peer}"
    if source.namespace is None:  # only an ipBlock admits an address outside the cluster
        return False
    if "namespaceSelector" in peer:
        in_namespace = matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": source.namespace})
    else:
        in_namespace = source.namespace == policy_namespace
    return in_namespace and matches(peer.get("podSelector", {}), source.labels)


def port_admits(ports: list[dict] | None, port: int, protocol: str = "TCP") -> bool:
    for entry in ports or []:
        assert isinstance(entry.get("port"), int) and "endPort" not in entry, f"evaluator does not handle {entry}"
    return not ports or any(e["port"] == port and e.get("protocol", "TCP") == protocol for e in ports)


def allowed(
    policies: list[dict],
    direction: str,
    namespace: str,
    labels: dict[str, str],
    peer: Source,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether the policies of a pod with `labels` in `namespace` let `peer` connect to its `port` (direction
    "Ingress"), or let it connect to `peer`:`port` ("Egress"); a pod no policy of that direction selects may."""
    rules, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and matches(p["spec"]["podSelector"], labels)
        and direction in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules, []):
            peers = rule.get(peers_key)
            peer_ok = not peers or any(peer_admits(entry, peer, namespace) for entry in peers)
            if peer_ok and port_admits(rule.get("ports"), port, protocol):
                return True
    return False


def admitted(policies: list[dict], source: Source, namespace: str, labels: dict[str, str], port: int) -> bool:
    """Whether `source` may connect to `port` of a pod with `labels` in `namespace`."""
    return allowed(policies, "Ingress", namespace, labels, source, port)


def sends(
    policies: list[dict], namespace: str, labels: dict[str, str], destination: Source, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a pod with `labels` in `namespace` may open a connection to `destination`:`port` (its egress)."""
    return allowed(policies, "Egress", namespace, labels, destination, port, protocol)


# The calls of the issue, written out here rather than taken from the code under test.
SUITE_CALLS = {
    ("nginx-lua", "frontend", 8081),
    ("nginx-lua", "authentication", 8082),
    ("nginx-lua", "session", 8084),
    ("frontend", "person", 8085),
    ("person", "authorisation", 8083),
}
DATABASE_CALLS = {(service, "mysql", 3306) for service in ("authentication", "authorisation", "session", "person")}
EXPECTED = {
    "single-pod": {(ANYWHERE, "auth-suite", 8080)},
    "split-pods": SUITE_CALLS | {(ANYWHERE, "nginx-lua", 8080)},
    "split-pods-mysql": SUITE_CALLS | DATABASE_CALLS | {(ANYWHERE, "nginx-lua", 8080)},
}


def rendered(variant: str) -> tuple[str, list[dict], dict[str, dict]]:
    """The variant's namespace, its NetworkPolicies, and its pod templates by workload name."""
    objects = render_variant(variant).objects
    pods = {w["metadata"]["name"]: t for w, t in pod_templates(objects)}
    return VARIANTS[variant][0].namespace, list(of_kind(objects, "NetworkPolicy").values()), pods


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_policies_admit_exactly_the_suites_calls(variant: str) -> None:
    namespace, policies, pods = rendered(variant)
    sources = [Source(name, namespace, t["metadata"]["labels"]) for name, t in pods.items()]
    gateway_labels = pods["nginx-lua" if "nginx-lua" in pods else "auth-suite"]["metadata"]["labels"]
    strangers = [  # look like ours, but are not: another namespace, another instance, outside the cluster
        Source("same labels, other namespace", "elsewhere", gateway_labels),
        Source("other instance", namespace, {**gateway_labels, "app.kubernetes.io/instance": "other"}),
        Source("outside the cluster"),
    ]
    found = set()
    for target, template in pods.items():
        ports = [p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]] + [22, 9000]
        for port in ports:
            allowed = {
                s.name
                for s in sources + strangers
                if admitted(policies, s, namespace, template["metadata"]["labels"], port)
            }
            if allowed == {s.name for s in sources + strangers}:
                found.add((ANYWHERE, target, port))
            else:
                found |= {(name, target, port) for name in allowed}
    assert found == EXPECTED[variant]


def test_the_evaluator_admits_everything_without_a_policy_and_scopes_pod_selectors() -> None:
    pod = {"app": "a"}
    assert admitted([], Source("x"), "ns", pod, 80)
    policy = {
        "metadata": {"namespace": "ns"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "a"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    }
    assert admitted([policy], Source("b", "ns", {"app": "b"}), "ns", pod, 80)
    assert not admitted([policy], Source("b", "other", {"app": "b"}), "ns", pod, 80)
    assert not admitted([policy], Source("outside"), "ns", pod, 80)


KUBE_DNS = Source("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
METADATA = Source("metadata server 169.254.169.254")  # an address outside the cluster's pods


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pods_send_only_the_suites_calls_and_dns(variant: str) -> None:
    namespace, policies, pods = rendered(variant)
    found = set()
    for source, template in pods.items():
        labels = template["metadata"]["labels"]
        for target, other in pods.items():
            for port in [p["containerPort"] for c in other["spec"]["containers"] for p in c["ports"]] + [22]:
                if target != source and sends(
                    policies, namespace, labels, Source(target, namespace, other["metadata"]["labels"]), port
                ):
                    found.add((source, target, port))
        assert sends(policies, namespace, labels, KUBE_DNS, 53, "UDP") and sends(
            policies, namespace, labels, KUBE_DNS, 53, "TCP"
        )
        assert not sends(policies, namespace, labels, KUBE_DNS, 8080)
        assert not sends(policies, namespace, labels, METADATA, 80)  # no node credentials
        assert not sends(policies, namespace, labels, Source("the Internet"), 443)
    assert found == {call for call in EXPECTED[variant] if call[0] != ANYWHERE}
