"""The one progress interface of every stage: lines of the run's log, and steps of a named subject.

A stage takes the method it uses, typed by the aliases here: `say` for lines (targets, smoke, the Artifact
Registry repository), `step` for a subject's current step (each image while building and publishing, the
bases). deploy/output.py has the implementations (a rich live line per subject on a terminal, plain lines
otherwise); the default of a stage's parameter is silence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Say = Callable[[str], None]
Step = Callable[[str, str], None]


class Progress(Protocol):
    def say(self, line: str) -> None:
        """One line of the run's log."""

    def step(self, subject: str, message: str) -> None:
        """`subject` (an image name, a base, or a stage) is now doing `message`."""

    def close(self) -> None: ...


def silent(line: str) -> None:
    """The `say` of a stage nobody listens to."""


def silent_step(subject: str, message: str) -> None:
    """The `step` of a stage nobody listens to."""
