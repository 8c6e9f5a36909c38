"""The base of the stages that work on one environment's objects in one namespace: the namespace itself made
(labelled for Pod Security) and waited out when it is still terminating. Apart from client.py, which watch.py
builds on, so that the waits here can use watch.py's Changes without an import circle."""

from __future__ import annotations

import time

from deploy.model.errors import LeftoversError
from deploy.model.progress import Say, silent
from deploy.targets.kube import INSTANCE, MANAGED_BY, MANAGER, NAMESPACE
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.watch import Changes

# Pod Security admission enforces the `restricted` profile the rendered pods are written for, in a namespace
# k8sdeploy creates: a pod that asks for more (root, privilege escalation, a capability) is refused.
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
}


class Scoped:
    """Base of the stages that work on one environment's objects in one namespace."""

    def __init__(self, api: KubeApi, namespace: str, env_name: str, say: Say = silent, poll: float = 0.5):
        self.api = api
        self.namespace = namespace
        self.env_name = env_name
        self.say = say
        self.poll = poll

    def wait_namespace_gone(self, timeout: float = 300) -> None:
        """A deleted namespace stays Terminating until the namespace controller has emptied it: checked again
        whenever it changes (a watch on it), at least every `poll` seconds."""
        started = said = time.monotonic()
        named = f"metadata.name={self.namespace}"
        with Changes(self.api, "", (NAMESPACE,), fields=named, fallback=self.poll) as changes:
            while (namespace := self.api.get(NAMESPACE, "", self.namespace)) is not None:
                waited = time.monotonic() - started
                if waited > timeout:
                    why = (
                        "; ".join(
                            c.get("message", "")
                            for c in (namespace.get("status") or {}).get("conditions") or []
                            if c.get("status") == "True"
                        )
                        or "no reason given"
                    )
                    raise LeftoversError(
                        f"namespace {self.namespace} is still terminating after {timeout:g} s: {why}",
                        "look at what is left in it (its finalizers), then run the command again",
                    )
                if time.monotonic() - said >= 5:
                    self.say(f"waiting for namespace {self.namespace} to finish terminating ({waited:.0f} s)")
                    said = time.monotonic()
                changes.wait()

    def ensure_namespace(self) -> bool:
        """Create our namespace if missing; an existing one (ours or not) is only used, never changed. One still
        terminating (an `up` right after `down`) takes no new objects: wait for it to go, then create it. Whether it
        was created (so it holds nothing)."""
        live = self.api.get(NAMESPACE, "", self.namespace)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            self.say(f"namespace {self.namespace} is still terminating (an earlier down); waiting for it to go")
            self.wait_namespace_gone()
            live = None
        labels = {MANAGED_BY: MANAGER, INSTANCE: self.env_name, **POD_SECURITY}
        ours = live is not None and live["metadata"].get("labels", {}).get(MANAGED_BY) == MANAGER
        if live is None or (ours and any(live["metadata"].get("labels", {}).get(k) != v for k, v in labels.items())):
            self.api.apply(
                NAMESPACE,
                "",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace, "labels": labels}},
            )
            self.say(
                f"{'created' if live is None else 'labelled'} namespace {self.namespace} (Pod Security: restricted)"
            )
        return live is None
