"""The gke target's diff asks Google only what the preview's documented role allows (docs/targets.md, "The
preview's permissions"): each permission the fake GKE and Compute APIs check is recorded, and the set is the
role's Google permissions but the registry's (the images are asked after by the build, not the target). Without
compute.firewalls.get the firewall rule is named as not compared, and the diff goes on."""

from __future__ import annotations

import pytest

from deploy.targets.gke.kind import gke_target
from deploy.targets.gke.target import GkeTarget
from tests.deploy.targets.gke.conftest import ENV, Cloud, environment
from tests.deploy.targets.gke.test_gke_diff import FIREWALL
from tests.deploy.targets.kube.objects import single_pod
from tests.deploy.targets.kube.test_diff_read_only import GOOGLE


def recorded(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The permissions the fakes check from now on, in order (each fake's own check still decides)."""
    asked: list[str] = []
    for fake in (cloud.gke, cloud.compute):

        def check(project: str, permission: str, inner=fake.check) -> None:  # noqa: ANN001
            asked.append(permission)
            inner(project, permission)

        monkeypatch.setattr(fake, "check", check)
    return asked


def test_the_preview_asks_google_only_what_its_role_documents(
    cloud: Cloud, target: GkeTarget, said: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = single_pod(ENV)
    target.apply(objects)
    cloud.controller.wait_idle()

    asked = recorded(cloud, monkeypatch)
    running = gke_target(environment(cloud.namespace), said.append, cloud.apis()).diff(objects)
    assert [change.ref for change in running if change.changed] == []
    assert set(asked) == GOOGLE - {"artifactregistry.repositories.downloadArtifacts"}

    cloud.compute.denied = {"compute.firewalls.get"}
    mark = cloud.mark()
    denied = {
        change.ref: change
        for change in gke_target(environment(cloud.namespace), said.append, cloud.apis()).diff(objects)
    }
    assert (denied[FIREWALL].action, denied[FIREWALL].note) == (
        "unknown",
        "not compared: no permission compute.firewalls.get",
    )
    assert [ref for ref, change in denied.items() if change.changed] == []
    assert cloud.mutations(mark) == []
