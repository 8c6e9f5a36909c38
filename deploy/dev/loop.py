"""The loop of `k8sdeploy dev`: deploy as `up` does (a dev release), then for each batch of saved files do what
it asks (deploy/dev/watch.py) in place on the local engine, or by new images on a cluster, and say how long it
took to serve, or why it could not; Ctrl-C stops watching."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deploy.dev.watch import Actions, actions_for, ignored
from deploy.model.errors import DeployError
from deploy.model.images import PublishedImage
from deploy.model.progress import Say
from deploy.model.suite import GATEWAY
from deploy.runner import BuildingRunner, UpResult
from deploy.targets.kit import Following, InPlace

Watch = Callable[..., Iterator[set[tuple[Any, str]]]]  # watchfiles.watch: (Change, path)


@dataclass(frozen=True)
class DevLoop:
    runner: BuildingRunner
    layout: str
    checkout: Path
    live: Live
    logs: Following | None  # the local target's; a cluster's logs are `k8sdeploy logs SERVICE`
    say: Say
    watch: Watch
    serving: Callable[[UpResult], None]  # told the URL once it serves

    def run(self, stop: threading.Event | None = None) -> UpResult:
        """Deploy, then serve changes until Ctrl-C (or `stop`); the environment's lease is held throughout."""
        with self.runner.holding():
            result = self.runner.dev_up(self.layout)
            self.serving(result)
            if self.logs is not None:
                self.logs.start()
            try:
                self.say(f"watching {self.checkout} (Ctrl-C stops watching and leaves the deployment running)")
                for changes in self.watch(
                    self.checkout,
                    watch_filter=lambda _change, path: not ignored(self.relative(path)),
                    debounce=50,
                    step=20,
                    stop_event=stop,
                    rust_timeout=500,
                    yield_on_timeout=False,
                ):
                    actions = actions_for((Path(path) for _change, path in changes), self.checkout)
                    if actions:
                        result = self.serve(actions, result)
            except KeyboardInterrupt:
                self.say("stopped watching")
            finally:
                if self.logs is not None:
                    self.logs.stop()
        return result

    def relative(self, path: str) -> Path:
        try:
            return Path(path).relative_to(self.checkout)
        except ValueError:
            return Path(path)

    def serve(self, actions: Actions, result: UpResult) -> UpResult:
        started = time.monotonic()
        self.say(f"change: {actions.describe()}")
        try:
            result = self.runner.dev_up(self.layout) if actions.rebuild else self.live.apply(actions, result)
        except DeployError as failed:
            self.say(f"error: {failed}")
            if failed.details:
                self.say(failed.details)
            self.say("still watching: the next save tries again")
            return result
        self.say(f"served in {time.monotonic() - started:.2f} s")
        return result


class Live(Protocol):
    """How a batch of saved files reaches what runs: in place (local), or by new images (a cluster)."""

    def apply(self, actions: Actions, result: UpResult) -> UpResult:
        """Serve `actions` on the deployment of `result`; raise a DeployError (its diagnosis) when they fail."""


@dataclass(frozen=True)
class Restart:
    """A target that changes in place (the local one: the checkout is bound into the containers, so a service is
    only started again by its devserver, the gateway's files written anew and nginx reloaded)."""

    live: InPlace
    render: Callable[[UpResult], Sequence[dict]]  # the objects of a deployed result, as `dev` applies them
    say: Say

    def apply(self, actions: Actions, result: UpResult) -> UpResult:
        if actions.reconfigure:
            self.say(f"wrote {', '.join(self.live.rewrite_files(self.render(result))) or 'nothing new'}")
        problems = self.live.restart(actions.restart) if actions.restart else {}
        if actions.reload or actions.reconfigure:
            refused = self.live.reload_gateway()
            if refused:
                problems[GATEWAY] = f"nginx refused the configuration:\n    {refused}"
        if problems:
            raise Diagnosis(problems)
        return result


@dataclass(frozen=True)
class Republish:
    """A Kubernetes target: the images a saved file changed are built and pushed (their new layer, config and
    manifest; the rest is in the registry), their workloads' image set by digest, the rollout followed."""

    runner: BuildingRunner
    publish: Callable[[Collection[str]], Mapping[str, PublishedImage]]  # built and pushed, by image name
    say: Say

    def apply(self, actions: Actions, result: UpResult) -> UpResult:
        names = set(actions.restart) | ({GATEWAY} if actions.reload or actions.reconfigure else set())
        images = self.publish(names)
        for name, image in sorted(images.items()):
            self.say(f"{name}: pushed {image.tag} ({image.digest[:19]})")
        return self.runner.dev_redeploy(result, images)


class Diagnosis(DeployError):
    """What did not come back after a change; `dev` says it and keeps watching."""

    def __init__(self, problems: dict[str, str]):
        super().__init__(
            f"{', '.join(sorted(problems))} did not come back",
            "fix it and save again",
            details="\n".join(f"{name}: {text}" for name, text in sorted(problems.items())),
        )
