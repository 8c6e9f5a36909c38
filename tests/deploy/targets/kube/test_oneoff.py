"""One-off commands (a rollback's schema downgrade or restore) as Jobs on the real control plane: the Job runs the
image the service runs now, with its settings and its claim, on its pod's node; the answer is the container's exit
code (KWOK's stages end the pods, as a kubelet would) and its log; the Job is gone afterwards."""

from __future__ import annotations

import pytest

from deploy.targets.kube import POD
from deploy.targets.kube.oneoff import JOB, ONE_OFF, OneOff
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster
from tests.deploy.targets.kube.conftest import ENV
from tests.deploy.targets.kube.objects import split_pods

COMMAND = ("python3", "-m", "services.common.migrate", "person", "downgrade", "0002")
FAILED = """{{ $now := Now }}
phase: Failed
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  restartCount: 0
  state: {terminated: {exitCode: 3, reason: Error, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ end }}
"""


def with_claim(objects: list[dict]) -> list[dict]:
    """split_pods with person's data on its claim and its settings in the environment, as the layouts render it."""
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            spec = obj["spec"]["template"]["spec"]
            spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "person-data"}}]
            person = spec["containers"][0]
            person["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
            person["env"] = [{"name": "DATABASE_PATH", "value": "/data/person.db"}]
    return objects


@pytest.fixture
def running(target: KubeTarget) -> KubeTarget:
    target.apply(with_claim(split_pods(ENV, "NodePort")))
    target.wait(timeout=60)
    return target


def test_a_one_off_runs_as_a_job_of_the_running_image_with_its_claim_and_is_removed(
    running: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    oneoff = OneOff(running.api, kube.namespace, ENV, poll=0.05)
    pod = oneoff.running_pod("person")
    job = oneoff.job("person", COMMAND, pod, "person-oneoff-1", 600)
    [container] = job["spec"]["template"]["spec"]["containers"]
    [person] = [c for c in pod["spec"]["containers"] if c["name"] == "person"]
    assert container["image"] == person["image"] and container["command"] == list(COMMAND)
    assert container["env"] == [{"name": "DATABASE_PATH", "value": "/data/person.db"}]
    assert job["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "person-data"}}
    ]
    assert job["spec"]["template"]["spec"]["nodeName"] == pod["spec"]["nodeName"]  # where the claim is mounted
    assert "readinessProbe" not in container and job["spec"]["backoffLimit"] == 0

    mark = kube.mark()
    code, _log = running.run_in("person", COMMAND)
    assert code == 0  # KWOK's pod-complete stage: the Job's pod Succeeded, the Job controller marked it Complete
    assert any(
        line.startswith("running `python3 -m services.common.migrate person downgrade 0002` as Job/person-oneoff-")
        for line in said
    )
    jobs = [m for m in kube.mutations(mark) if m.split()[1].startswith("jobs/person-oneoff-")]
    assert [m.split()[0] for m in jobs] == ["patch", "delete"], jobs  # applied, then deleted once it ended
    assert running.api.list(JOB, kube.namespace) == []
    assert not [
        p
        for p in running.api.list(POD, kube.namespace, f"{ONE_OFF}=true")
        if not p["metadata"].get("deletionTimestamp")
    ]


def test_a_failing_one_off_answers_its_exit_code_and_log(running: KubeTarget, kube: KubeCluster) -> None:
    kube.simulate_status(FAILED, f"has(self.metadata.labels) && '{ONE_OFF}' in self.metadata.labels")
    kube.logs({"person": "database person.db: no copy kept at revision 0002"})
    code, log = running.run_in("person", COMMAND)
    assert code == 3
    assert "no copy kept at revision 0002" in log
    assert running.api.list(JOB, kube.namespace) == []
