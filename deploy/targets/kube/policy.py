"""Whether a cluster enforces NetworkPolicies: the API server stores them either way, only a network plugin that
implements them makes them hold. Looked for as that plugin's agent, a DaemonSet in kube-system."""

from __future__ import annotations

from deploy.model.errors import DeployError
from deploy.targets.kube import Resource
from deploy.targets.kube.client import KubeApi

DAEMONSET = Resource("DaemonSet", "apps/v1", "daemonsets")
# The agents of the network plugins that enforce NetworkPolicies (GKE Dataplane V2 runs anetd, Cilium's).
ENFORCERS = ("calico-node", "cilium", "anetd", "antrea-agent", "kube-router", "weave-net", "canal", "kube-ovn-cni")


def enforcer(api: KubeApi) -> str | None:
    """The name of the enforcing plugin's DaemonSet, "" when there is none, None when the API does not say."""
    try:
        names = [d["metadata"]["name"] for d in api.list(DAEMONSET, "kube-system")]
    except DeployError:
        return None  # not allowed to look, or no answer
    return next((name for name in names if any(name.startswith(known) for known in ENFORCERS)), "")


def warning(api: KubeApi, context: str) -> str:
    """One line for `up` when `context` may not enforce the layout's NetworkPolicies; "" when it does."""
    found = enforcer(api)
    if found:
        return ""
    why = "cannot list DaemonSets in kube-system" if found is None else "no policy-enforcing network plugin found"
    return (
        f"warning: cannot tell that {context} enforces NetworkPolicies ({why}: looked for "
        f"{', '.join(ENFORCERS)}); the layout's policies are applied but may not be enforced, so every pod can "
        "reach the services (their internal tokens still refuse a caller without proof)"
    )
