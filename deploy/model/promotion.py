"""Which release `promote` takes from the source environment, and the gates it must pass there: recorded checks
(ready, and the smoke login where the source runs it), time served (`promote_after`), and a named approver where
the target has `approvers`. `--force` goes past the source's gates and is recorded; it does not stand in for an
approver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.progress import Say
from deploy.model.releases import NoRelease, Release


@dataclass(frozen=True)
class Promotion:
    """A release of `source` on its way to another environment."""

    source: str  # the environment it comes from
    release: Release
    forced: str = ""  # the gates --force went past, a clause each
    approved_by: str = ""

    @property
    def promoted_from(self) -> Mapping[str, str]:
        return MappingProxyType(
            {"environment": self.source, "version": self.release.version, "record": self.release.digest()}
        )


def parse_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")


def seconds(span: float) -> str:
    return f"{span / 3600:.1f} h" if span >= 3600 else f"{span / 60:.0f} min" if span >= 60 else f"{span:.0f} s"


def chosen(releases: Sequence[Release], version: str | None, source: str) -> tuple[Release, Release | None]:
    """The release to promote (`version`'s newest record, else the newest) and the one recorded after it."""
    if not releases:
        raise NoRelease(
            f"no release is recorded in environment {source}", f"deploy one there with `k8sdeploy up --env {source}`"
        )
    if version is None:
        return releases[-1], None
    for index in range(len(releases) - 1, -1, -1):
        if releases[index].version == version:
            return releases[index], releases[index + 1] if index + 1 < len(releases) else None
    known = ", ".join(dict.fromkeys(r.version for r in reversed(releases)))
    raise NoRelease(
        f"no release {version} is recorded in environment {source} (one whose deploy failed is never recorded)",
        f"choose one of: {known}",
    )


def route(source: Environment, target: Environment, approved_by: str = "") -> None:
    """Refuse (exit 2) a promotion `target` does not take, before either environment is asked anything: from
    another environment than its promote_from, or without one of its approvers."""
    if target.promote_from and target.promote_from != source.name:
        raise ConfigError(
            f"environment {target.name} takes releases from {target.promote_from}, not from {source.name}",
            f"run `k8sdeploy promote --from {target.promote_from} --to {target.name}`, or change promote_from in "
            f"[environments.{target.name}]",
        )
    if target.approvers and approved_by not in target.approvers:
        raise ConfigError(
            f"a promotion to {target.name} needs the approval of one of {', '.join(target.approvers)}"
            + (f"; {approved_by!r} is not one of them" if approved_by else ""),
            "pass --approved-by NAME (in CI: the approver of the deployment)",
        )


def gate(
    source: Environment,
    releases: Sequence[Release],
    target: Environment,
    now: datetime,
    say: Say,
    version: str | None = None,
    force: bool = False,
    approved_by: str = "",
) -> Promotion:
    """The promotion of `source`'s release to `target`, or a ConfigError (exit 2) naming each gate it fails."""
    route(source, target, approved_by)
    to = f"[environments.{target.name}]"
    release, later = chosen(releases, version, source.name)
    problems = []
    wanted = ("ready", "smoke") if source.smoke else ("ready",)
    if release.action == "dev":
        problems.append(f"{release.version} was deployed by `k8sdeploy dev` (uncommitted work)")
    missing = [check for check in wanted if check not in release.checks]
    if missing:
        problems.append(
            f"{release.version} did not pass {' and '.join(missing)} in {source.name}"
            + (" (recorded with --no-smoke)" if release.checks == ("ready",) else "")
            + (" (no checks are recorded with it)" if not release.checks else "")
        )
    if target.promote_after:
        until = parse_time(later.time) if later is not None else now
        served = (until - parse_time(release.time)).total_seconds()
        if served < target.promote_after_seconds:
            how = f"was replaced after {seconds(served)}" if later is not None else f"has served {seconds(served)}"
            problems.append(
                f"{release.version} {how} in {source.name}; {target.name} takes releases that served "
                f"{target.promote_after} (promote_after in {to})"
            )
    if problems and not force:
        raise ConfigError(
            f"refusing to promote {release.version} from {source.name}: {'; '.join(problems)}",
            "promote a release that passed its checks there, or pass --force (it is recorded in the history)",
        )
    for problem in problems:
        say(f"warning: --force: {problem}")
    return Promotion(source.name, release, "; ".join(problems), approved_by)
