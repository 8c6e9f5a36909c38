"""One-off commands in the environment, as `rollback` runs a schema downgrade or restore: a Job of the image a
service runs now, with that container's settings and volumes (its claim), on the node of its running pod (a
ReadWriteOnce claim is mounted there), waited for; its exit code and log are the answer.

Job and pod fields as in the Kubernetes API reference (batch/v1 Job: backoffLimit, activeDeadlineSeconds,
ttlSecondsAfterFinished; status.conditions Complete / Failed; the controller's `batch.kubernetes.io/job-name`
pod label)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from deploy.model.errors import ApplyError
from deploy.model.progress import Say, silent
from deploy.targets.kube import INSTANCE, MANAGED_BY, MANAGER, NAME, POD, Resource, owner_selector
from deploy.targets.kube.client import KubeApi, KubeApiError

JOB = Resource("Job", "batch/v1", "jobs")
JOB_LABEL = "batch.kubernetes.io/job-name"  # set on its pods by the Job controller
ONE_OFF = "k8sdeploy.io/one-off"
DEFAULT_TIMEOUT = 600.0
LOG_LINES = 200
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def job_name(service: str, now: float) -> str:
    return f"{service}-oneoff-{int(now * 1000) % 10**10}"


class OneOff:
    def __init__(self, api: KubeApi, namespace: str, env_name: str, say: Say = silent, poll: float = 1.0):
        self.api, self.namespace, self.env_name, self.say, self.poll = api, namespace, env_name, say, poll

    def running_pod(self, service: str) -> dict:
        """A running pod of the environment with a container named `service` (the newest when several)."""
        pods = [
            pod
            for pod in self.api.list(POD, self.namespace, owner_selector(self.env_name))
            if not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") == "Running"
            and any(c["name"] == service for c in pod["spec"].get("containers", []))
        ]
        if not pods:
            raise ApplyError(
                f"no running pod of environment {self.env_name} has a {service} container to run a one-off command "
                "with",
                "run `k8sdeploy status`; the command needs the release that runs now",
            )
        return max(pods, key=lambda pod: pod["metadata"].get("creationTimestamp", ""))

    def job(self, service: str, command: Sequence[str], pod: dict, name: str, timeout: float) -> dict:
        """A Job of `pod`'s container `service` (image, settings, mounts, security) running `command` once."""
        spec = pod["spec"]
        container = next(c for c in spec["containers"] if c["name"] == service)
        kept = ("image", "env", "envFrom", "securityContext", "resources", "workingDir")
        one = {"name": service, **{key: container[key] for key in kept if key in container}}
        one["command"] = list(command)
        # the rendered mounts; not the service account token the API server's admission added to the pod
        mounts = [m for m in container.get("volumeMounts", []) if not m["mountPath"].startswith(TOKEN_PATH)]
        if mounts:
            one["volumeMounts"] = mounts
        mounted = {mount["name"] for mount in mounts}
        pod_spec: dict[str, object] = {
            "restartPolicy": "Never",
            "containers": [one],
            "volumes": [volume for volume in spec.get("volumes", []) if volume["name"] in mounted],
        }
        for key in ("securityContext", "serviceAccountName", "imagePullSecrets", "nodeName"):
            if key in spec:
                pod_spec[key] = spec[key]
        pod_spec["automountServiceAccountToken"] = False
        labels = {MANAGED_BY: MANAGER, INSTANCE: self.env_name, NAME: service, ONE_OFF: "true"}
        return {
            "apiVersion": JOB.api_version,
            "kind": JOB.kind,
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": int(timeout),
                "ttlSecondsAfterFinished": 3600,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        }

    def run(self, service: str, command: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        """(exit code, log) of `command` run once as a Job like `service`'s running container; the Job is deleted
        when it has ended (its log read first)."""
        name = job_name(service, time.time())
        job = self.job(service, command, self.running_pod(service), name, timeout)
        self.say(f"running `{' '.join(command)}` as Job/{name} (the image {service} runs now)")
        self.api.apply(JOB, self.namespace, job)
        try:
            ended = self.wait(name, timeout)
            pods = self.api.list(POD, self.namespace, f"{JOB_LABEL}={name}")
            code = exit_code(pods, service, ended)
            log = self.log_of(pods, service)
        finally:
            self.api.delete(JOB, self.namespace, name)
        return code, log

    def wait(self, name: str, timeout: float) -> str:
        """Complete or Failed: the Job's condition once it has ended."""
        deadline = time.monotonic() + timeout + 30  # the Job's own deadline ends it first
        while True:
            job = self.api.get(JOB, self.namespace, name) or {}
            for condition in (job.get("status") or {}).get("conditions") or []:
                if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
                    return str(condition["type"])
            if time.monotonic() > deadline:
                raise ApplyError(
                    f"Job/{name} did not end within {timeout:.0f} s",
                    f"see `kubectl -n {self.namespace} describe job {name}`; nothing of the older release was applied",
                )
            time.sleep(self.poll)

    def log_of(self, pods: list[dict], service: str) -> str:
        for pod in pods:
            try:
                return str(self.api.log(self.namespace, pod["metadata"]["name"], service, LOG_LINES))
            except KubeApiError as exc:
                return f"(its log could not be read: {exc.api_message})"
        return "(no pod of the Job was found to read its log from)"


def exit_code(pods: list[dict], service: str, ended: str) -> int:
    """The container's exit code as its pod reports it; else 0 for a Complete Job and 1 for a Failed one."""
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if status.get("name") == service and terminated and "exitCode" in terminated:
                return int(terminated["exitCode"])
    return 0 if ended == "Complete" else 1
