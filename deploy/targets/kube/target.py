"""The Target protocol on any Kubernetes API: apply, wait, status, logs and down of one environment."""

from __future__ import annotations

from collections.abc import Sequence

from deploy.model.changes import ObjectChange
from deploy.model.errors import ConfigError, LeftoversError, NotReadyError
from deploy.model.progress import Say, silent
from deploy.model.status import ApplyResult, ServiceStatus
from deploy.targets.kube import policy
from deploy.targets.kube.apply import Applier
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.diff import Differ
from deploy.targets.kube.edits import Edits
from deploy.targets.kube.oneoff import OneOff
from deploy.targets.kube.teardown import Teardown
from deploy.targets.kube.wait import Readiness, container_states


class KubeTarget:
    """The kubeconfig target as is; the gke target wraps it with the cluster and the cloud around it."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        env_name: str,
        say: Say = silent,
        poll: float = 1.0,
        check_policies: bool = False,
    ):
        """`check_policies`: say once per apply when the cluster may not enforce NetworkPolicies (gke knows)."""
        self.api = api
        self.say = say
        self.check_policies = check_policies
        self.namespace = namespace
        self.env_name = env_name
        self.applier = Applier(api, namespace, env_name, say, poll=poll)
        self.readiness = Readiness(api, namespace, env_name, say, poll=poll)
        self.teardown = Teardown(api, namespace, env_name, say, poll=poll)
        self.edits = Edits(api, namespace, env_name, say, poll=poll)
        self.oneoff = OneOff(api, namespace, env_name, say, poll=poll)

    def apply(self, objects: Sequence[dict]) -> ApplyResult:
        if self.check_policies and any(obj.get("kind") == "NetworkPolicy" for obj in objects):
            line = policy.warning(self.api, f"the cluster of namespace {self.namespace}")
            if line:
                self.say(line)
        return self.applier.apply(objects)

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]:
        return Differ(self.applier).diff(objects)

    def wait(self, timeout: float) -> None:
        """After an apply that changed nothing, the first look is at what its survey read."""
        seen, self.applier.unchanged = self.applier.unchanged, None
        self.readiness.wait(timeout, seen)

    def status(self) -> list[ServiceStatus]:
        return self.readiness.status()

    def gateway_url(self) -> str:
        """Where the gateway answers: as the wait just found it, else read now."""
        url = self.readiness.address or self.readiness.gateway_address(self.readiness.gateway_service())
        if not url:
            raise NotReadyError(
                f"the gateway of environment {self.env_name} has no address",
                "run `k8sdeploy status`; a LoadBalancer takes a minute or two to get one",
            )
        return url

    def run_in(self, service: str, command: Sequence[str]) -> tuple[int, str]:
        """As a Job of the image `service` runs now, with its settings and claim (deploy/targets/kube/oneoff.py)."""
        return self.oneoff.run(service, command)

    def logs(self, service: str, lines: int = 50) -> str:
        states = [s for pod in self.readiness.pods(self.readiness.workloads()) for s in container_states(pod)]
        for state in states:
            if state.name == service:
                return self.api.log(self.namespace, state.pod, service, lines)
        known = ", ".join(sorted({s.name for s in states}))
        if not known:
            raise ConfigError(
                f"nothing of environment {self.env_name} runs in namespace {self.namespace}", "run `k8sdeploy up`"
            )
        raise ConfigError(f"no service {service!r} in environment {self.env_name}", f"choose one of: {known}")

    def hand_edits(self) -> tuple[str, ...]:
        return self.edits.lines()

    def down(self, volumes: bool = False) -> tuple[str, ...]:
        removed, _ = self.teardown.load_balancers()
        if volumes:
            everything, gone = self.teardown.everything()
            removed += everything
            if gone:  # its controller removes a namespace only once it has emptied it: nothing is left to look for
                return tuple(removed)
        else:
            removed += self.teardown.workloads()
            for claim in self.teardown.remaining(volumes=True):
                self.teardown.say(
                    f"kept {claim}: it holds data (`k8sdeploy down --volumes` removes it, "
                    f"and then namespace {self.namespace})"
                )
            removed += self.teardown.remove_namespace()  # only once it is empty of ours: not while claims are kept
        self.audit(volumes)
        return tuple(removed)

    def audit(self, volumes: bool) -> None:
        left = self.teardown.remaining(volumes)
        if left:
            raise LeftoversError(
                f"{len(left)} object(s) of environment {self.env_name} are left: {', '.join(left)}",
                "delete them by hand or run `k8sdeploy down` again",
            )
