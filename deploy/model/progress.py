"""Progress on stderr: one line per image on a terminal (rich), one plain line per step otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO


class Progress(Protocol):
    def step(self, subject: str, message: str) -> None:
        """`subject` (an image name, or a stage) is now doing `message`."""

    def close(self) -> None: ...


class PlainProgress:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._lock = threading.Lock()

    def step(self, subject: str, message: str) -> None:
        with self._lock:
            print(f"{subject}: {message}", file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """A live line per image (spinner, current step, elapsed time)."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import Progress as Live, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._live = Live(SpinnerColumn(), TextColumn("[bold]{task.fields[subject]:<15}"),
                          TextColumn("{task.description}"), TimeElapsedColumn(),
                          console=Console(file=stream), transient=False)
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._live.start()

    def step(self, subject: str, message: str) -> None:
        with self._lock:
            if subject not in self._tasks:
                self._tasks[subject] = self._live.add_task(message, subject=subject, total=None)
            self._live.update(self._tasks[subject], description=message)

    def close(self) -> None:
        for task in self._tasks.values():
            self._live.update(task, total=1, completed=1)
        self._live.stop()


def progress_for(stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    return RichProgress(stream) if stream.isatty() else PlainProgress(stream)
