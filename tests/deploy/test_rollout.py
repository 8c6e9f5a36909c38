"""The one line `up`, `rollback`, `promote` and `diff` say about what a change costs users (deploy/runner/rollout.py),
from the rendered layouts and the changes a target found."""

from __future__ import annotations

from deploy.model.changes import FieldChange, ObjectChange
from deploy.model.kinds import Kubeconfig, Local
from deploy.render.objects import Rendered, render
from deploy.runner.rollout import rollout_line
from tests.deploy.inputs import MYSQL_SECRET, VARIANTS, VERSION, fake_images

IMAGE = FieldChange("spec.template.spec.containers[name=person].image", "old", "new")


def rendered(name: str, **changes: object) -> Rendered:
    environment, layout = VARIANTS[name]
    environment = environment.model_copy(update=changes)
    return render(environment, layout, fake_images(), VERSION, mysql_secret=MYSQL_SECRET)


def line(variant: Rendered, *changes: ObjectChange, in_place: str = Kubeconfig.IN_PLACE) -> str:
    return rollout_line(variant.layout, variant.objects, in_place, changes)


def test_parts_on_a_database_server_roll_without_a_gap() -> None:
    production = rendered("split-pods-mysql", replicas={})
    said = line(production, ObjectChange("Deployment", "person", "update", (IMAGE,)))
    assert said.startswith("no gap: person rolls (2 replicas each"), said


def test_single_pod_and_sqlite_claims_say_the_gap_and_why() -> None:
    said = line(rendered("single-pod"), ObjectChange("Deployment", "auth-suite", "update", (IMAGE,)))
    assert said.startswith("gap: auth-suite (single-pod runs the suite in one pod) is stopped before its"), said
    assert 'database = "mysql"' in said
    split = rendered("split-pods")
    said = line(
        split,
        ObjectChange("Deployment", "person", "update", (IMAGE,)),
        ObjectChange("Deployment", "frontend", "update", (IMAGE,)),
    )
    assert said.startswith("gap: person (person-data is a ReadWriteOnce claim) is stopped before its"), said
    assert "frontend" not in said  # it has no claim: it rolls
    assert line(split, ObjectChange("Deployment", "frontend", "update", (IMAGE,))).startswith("no gap: frontend")


def test_the_database_server_restarting_is_a_gap() -> None:
    said = line(rendered("split-pods-mysql"), ObjectChange("StatefulSet", "mysql", "update", (IMAGE,)))
    assert said.startswith("gap: mysql (the database server"), said


def test_the_local_target_replaces_in_place() -> None:
    said = line(rendered("single-pod"), ObjectChange("Pod", "auth-suite", "replace"), in_place=Local.IN_PLACE)
    assert said.startswith("gap: the local target runs one container of each part"), said


def test_nothing_running_replaced_says_nothing() -> None:
    production = rendered("split-pods-mysql")
    replicas_only = FieldChange("spec.replicas", 2, 3)
    assert line(production) == ""
    assert line(production, ObjectChange("Deployment", "person", "create")) == ""  # a first deploy
    assert line(production, ObjectChange("Deployment", "person", "update", (replicas_only,))) == ""
    assert line(production, ObjectChange("Service", "person", "update", (IMAGE,))) == ""
