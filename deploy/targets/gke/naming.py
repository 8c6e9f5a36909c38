"""How GKE names the Compute pieces of a cluster's LoadBalancer Services, both kinds it makes, and the cluster
ids those names are made from, as the cluster itself keeps them.

- Target-pool load balancers (the cloud provider's service controller; cloud-provider-gcp
  providers/gce/gce_loadbalancer_naming.go): forwarding rule, target pool and `k8s-fw-` firewall rule named
  `a<Service uid without dashes>` (32 characters), the cluster's shared legacy health check of its nodes
  `k8s-<cluster id>-node` with its rule `...-http-hc`, where the cluster id is the `provider-uid` (else `uid`) of
  the `kube-system/ingress-uid` ConfigMap (providers/gce/gce_clusterid.go, ClusterID.GetID).
- Backend-service load balancers with GCE_VM_IP NEG backends (ingress-gce's L4 NetLB controller): the
  forwarding rule keeps `a<uid>` (pkg/l4/resources/l4netlb.go, frName: LegacyForwardingRuleName); the
  regional backend service, the Service's own health check, the nodes' firewall rule and the NEG of each zone
  are `k8s2-{cluster uid}-{namespace}-{name}-{hash}` (pkg/utils/namer/l4_namer.go, L4Backend, L4Firewall,
  L4HealthCheck; the NEG: pkg/neg/types/types.go), the health check's rule that name suffixed `-fw`, the deny
  rule `-deny`; with externalTrafficPolicy Cluster the health check is the cluster's shared
  `k8s2-{cluster uid}-l4-shared-hc` (rule `...-fw`). The cluster uid is a content hash of the `kube-system`
  namespace's UID (NewL4Namer), the hash one of cluster uid, namespace and name (getServiceHash), and namespace
  and name are trimmed evenly so the whole stays within 63 characters (pkg/utils/namer/utils.go,
  TrimFieldsEvenly).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from deploy.targets.kube import NAMESPACE
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.history import CONFIGMAP

BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"  # pkg/utils/common/common.go charMap
L4_PREFIX = "k8s2"
L4_COMBINED = 39  # namespace and name together: 63 - "k8s2" - 4 dashes - cluster uid (8) - hash (8)
MAX_NAME = 63


def content_hash(text: str, length: int) -> str:
    """ingress-gce's common.ContentHash: each of the first `length` bytes of SHA-256, modulo 36, as 0-9a-z."""
    return "".join(BASE36[byte % len(BASE36)] for byte in hashlib.sha256(text.encode()).digest()[:length])


def trim_fields_evenly(maximum: int, *fields: str) -> list[str]:
    """namer.TrimFieldsEvenly: the fields cut in proportion to their lengths until together within `maximum`."""
    total = sum(len(field) for field in fields)
    if maximum <= 0 or total <= maximum:
        return list(fields)
    excess = total - maximum
    lengths = [len(field) - len(field) * excess // total - 1 for field in fields]
    for i in range(maximum - sum(lengths)):  # what rounding down left over, to the first fields
        lengths[i] += 1
    return [field[: max(length, 0)] for field, length in zip(fields, lengths, strict=True)]


def suffixed(name: str, suffix: str) -> str:
    """namer.GetSuffixedName: the name cut so that it and the suffix fit 63 characters."""
    return name[: MAX_NAME - len(suffix)] + suffix


def load_balancer_name(service: dict) -> str:
    """A Service's forwarding rule (both kinds), target pool and k8s-fw- rule: a + its uid without dashes."""
    return ("a" + service["metadata"]["uid"].replace("-", ""))[:32]


def node_health_check(cluster_id: str) -> str:
    """The target-pool load balancers' shared health check of the nodes (its rule: this + -http-hc)."""
    return f"k8s-{cluster_id}-node"


@dataclass(frozen=True)
class ClusterIds:
    """The two ids a cluster's load-balancer names are made from: the L4 namer's cluster uid (from the
    kube-system namespace's UID) and the cloud provider's cluster id (the ingress-uid ConfigMap); either may be
    empty (a cluster whose controllers have not made it yet)."""

    l4_uid: str = ""
    provider_id: str = ""

    @classmethod
    def of(cls, api: KubeApi) -> ClusterIds:
        system = api.get(NAMESPACE, "", "kube-system")
        ids = (api.get(CONFIGMAP, "kube-system", "ingress-uid") or {}).get("data") or {}
        return cls(
            content_hash(system["metadata"]["uid"], 8) if system else "",
            ids.get("provider-uid") or ids.get("uid", ""),
        )

    def l4_backend(self, namespace: str, name: str) -> str:
        """L4Backend: the backend service, health check, nodes' firewall rule and NEGs of one Service."""
        service_hash = content_hash(f"{self.l4_uid};{namespace};{name}", 8)
        trimmed = "-".join(trim_fields_evenly(L4_COMBINED, namespace, name))
        return f"{L4_PREFIX}-{self.l4_uid}-{trimmed}-{service_hash}"

    def service_names(self, service: dict) -> list[str]:
        """What both kinds of load balancer name after this Service (each a prefix of its firewall rules, but
        for a long L4 name whose -fw rule is cut to fit)."""
        names = [load_balancer_name(service)]
        if self.l4_uid:
            backend = self.l4_backend(service["metadata"]["namespace"], service["metadata"]["name"])
            names += [backend, suffixed(backend, "-fw")]
        return names

    def shared(self) -> list[str]:
        """The cluster's shared health checks of both kinds (each a prefix of its firewall rule's name)."""
        return ([node_health_check(self.provider_id)] if self.provider_id else []) + (
            [f"{L4_PREFIX}-{self.l4_uid}-l4-shared-hc"] if self.l4_uid else []
        )
