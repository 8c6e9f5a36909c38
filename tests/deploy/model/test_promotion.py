"""promote's gates (deploy/model/promotion.py) on recorded releases: checks, time served, dev, --force, approvers."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.images import PublishedImage
from deploy.model.promotion import gate
from deploy.model.releases import NoRelease, Release

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
STAGE = Environment(name="stage", target="kubeconfig")
PROD = Environment(name="prod", target="kubeconfig", promote_from="stage", promote_after="1h")


def release(version: str, time: str, checks: tuple[str, ...] = ("ready", "smoke"), action: str = "up") -> Release:
    image = PublishedImage("127.0.0.1:5000/suite/person", version, "sha256:" + "a" * 64)
    return Release(
        version, "c" * 40, MappingProxyType({"person": image}), "single-pod", "sha256:" + "b" * 64, time, "t", action,
        checks=checks,
    )  # fmt: skip


def test_a_release_that_served_long_enough_after_its_checks_is_promoted() -> None:
    promotion = gate(STAGE, [release("1.0.0", "2026-12-02T10:30:00Z")], PROD, NOW, print)
    assert (promotion.release.version, promotion.forced) == ("1.0.0", "")
    assert promotion.promoted_from["record"] == promotion.release.digest()


@pytest.mark.parametrize(
    ("releases", "version", "said"),
    [
        ([release("1.0.0", "2026-12-02T11:30:00Z")], None, "1.0.0 has served 30 min in stage"),
        (
            [release("1.0.0", "2026-12-02T09:00:00Z"), release("1.1.0", "2026-12-02T09:10:00Z")],
            "1.0.0",
            "1.0.0 was replaced after 10 min in stage",
        ),
        ([release("1.0.0", "2026-12-02T09:00:00Z", ("ready",))], None, "did not pass smoke in stage"),
        ([release("1.0.0", "2026-12-02T09:00:00Z", ())], None, "no checks are recorded with it"),
        ([release("1.0.0", "2026-12-02T09:00:00Z", action="dev")], None, "deployed by `k8sdeploy dev`"),
    ],
)
def test_a_gate_refuses_with_exit_2_and_force_records_it(
    releases: list[Release], version: str | None, said: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        gate(STAGE, releases, PROD, NOW, print, version)
    assert caught.value.exit_code == 2 and said in str(caught.value)
    warned: list[str] = []
    forced = gate(STAGE, releases, PROD, NOW, warned.append, version, force=True)
    assert said in forced.forced and warned and warned[0].startswith("warning: --force: ")


def test_ready_alone_is_enough_where_the_source_runs_no_smoke_login() -> None:
    source = STAGE.model_copy(update={"smoke": False})
    assert gate(source, [release("1.0.0", "2026-12-02T09:00:00Z", ("ready",))], PROD, NOW, print).forced == ""


def test_an_unknown_version_or_an_empty_history_is_named() -> None:
    with pytest.raises(NoRelease, match="no release is recorded in environment stage"):
        gate(STAGE, [], PROD, NOW, print)
    with pytest.raises(NoRelease, match="no release 9.9.9 is recorded in environment stage"):
        gate(STAGE, [release("1.0.0", "2026-12-02T09:00:00Z")], PROD, NOW, print, "9.9.9")


def test_approvers_are_not_replaced_by_force() -> None:
    prod = PROD.model_copy(update={"approvers": ("ada",)})
    releases = [release("1.0.0", "2026-12-02T09:00:00Z")]
    with pytest.raises(ConfigError, match="needs the approval of one of ada"):
        gate(STAGE, releases, prod, NOW, print, force=True)
    with pytest.raises(ConfigError, match="'bob' is not one of them"):
        gate(STAGE, releases, prod, NOW, print, approved_by="bob")
    assert gate(STAGE, releases, prod, NOW, print, approved_by="ada").approved_by == "ada"
