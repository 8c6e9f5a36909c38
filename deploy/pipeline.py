"""`up`: build, render, apply, wait, smoke — each stage timed, the outcome one frozen record."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

from .environments import Environment
from .images import BuildRecord, PublishedImage
from .render import render
from .smoke import Smoke, SmokeReport
from .targets import ApplyResult, Target

Say = Callable[[str], None]


@dataclass(frozen=True)
class UpResult:
    environment: str
    layout: str
    version: str
    commit: str
    images: Mapping[str, PublishedImage]
    url: str
    applied: ApplyResult
    smoke: SmokeReport | None
    durations: Mapping[str, float]  # seconds per stage


class Stopwatch:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.durations: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = self.clock()
        try:
            yield
        finally:
            self.durations[name] = round(self.clock() - started, 3)


def describe(applied: ApplyResult) -> str:
    if not applied.changed:
        return f"no change: {', '.join(applied.unchanged) or 'nothing'} already up to date"
    parts = [f"{label} {', '.join(names)}" for label, names in
             (("created", applied.created), ("replaced", applied.replaced), ("removed", applied.removed),
              ("unchanged", applied.unchanged)) if names]
    return "; ".join(parts)


def up(environment: Environment, layout: str, *, build: Callable[[], BuildRecord], target: Target, smoke: Smoke,
       say: Say, wait_timeout: float, mysql_secret: str = "") -> UpResult:
    """Deploy `layout` to `environment`'s target; raises the failing stage's DeployError."""
    watch = Stopwatch()
    with watch.stage("build"):
        record = build()
    say(f"version {record.version}")
    with watch.stage("render"):
        rendered = render(environment, layout, record.images, record.version, mysql_secret=mysql_secret)
    for note in rendered.notes:
        say(f"note: {note}")
    with watch.stage("apply"):
        applied = target.apply(rendered.objects)
    say(describe(applied))
    with watch.stage("wait"):
        target.wait(wait_timeout)
    url = target.gateway_url()
    with watch.stage("smoke"):
        report = smoke.run(url)
    return UpResult(
        environment=environment.name, layout=layout, version=record.version, commit=record.commit,
        images=record.images, url=url, applied=applied, smoke=report,
        durations=MappingProxyType(dict(watch.durations)),
    )
