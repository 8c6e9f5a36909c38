"""The loop of `k8sdeploy dev`: deploy as `up` does (a dev release), then for each batch of saved files do what
it asks (deploy/dev/watch.py) and say how long it took to serve, or why it could not; Ctrl-C stops watching."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.dev.live import LocalLive
from deploy.dev.logs import LogFollower
from deploy.dev.watch import Actions, actions_for, ignored
from deploy.model.errors import DeployError
from deploy.model.progress import Say
from deploy.runner import Runner, UpResult

Watch = Callable[..., Iterator[set[tuple[Any, str]]]]  # watchfiles.watch: (Change, path)


@dataclass
class DevLoop:
    runner: Runner
    layout: str
    checkout: Path
    live: LocalLive
    logs: LogFollower
    render: Callable[[UpResult], Sequence[dict]]  # the objects of a deployed result, as `dev` applies them
    say: Say
    watch: Watch
    serving: Callable[[UpResult], None]  # told the URL once it serves

    def run(self, stop: threading.Event | None = None) -> UpResult:
        """Deploy, then serve changes until Ctrl-C (or `stop`); the environment's lease is held throughout."""
        with self.runner.holding():
            result = self.runner.dev_up(self.layout)
            self.serving(result)
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
            if actions.rebuild:
                result = self.runner.dev_up(self.layout)
            else:
                self.apply_in_place(actions, result)
        except DeployError as failed:
            self.say(f"error: {failed}")
            if failed.details:
                self.say(failed.details)
            self.say("still watching: the next save tries again")
            return result
        self.say(f"served in {time.monotonic() - started:.2f} s")
        return result

    def apply_in_place(self, actions: Actions, result: UpResult) -> None:
        if actions.reconfigure:
            self.say(f"wrote {', '.join(self.live.rewrite_files(self.render(result))) or 'nothing new'}")
        problems = self.live.restart(actions.restart) if actions.restart else {}
        if actions.reload or actions.reconfigure:
            refused = self.live.reload_gateway()
            if refused:
                problems["nginx-lua"] = f"nginx refused the configuration:\n    {refused}"
        if problems:
            raise Diagnosis(problems)


class Diagnosis(DeployError):
    """What did not come back after a change; `dev` says it and keeps watching."""

    def __init__(self, problems: dict[str, str]):
        super().__init__(
            f"{', '.join(sorted(problems))} did not come back",
            "fix it and save again",
            details="\n".join(f"{name}: {text}" for name, text in sorted(problems.items())),
        )
