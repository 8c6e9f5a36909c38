"""The example CI workflow uses only commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "staging.yml"


def run_lines() -> list[str]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    return [line.strip() for job in jobs.values() for step in job["steps"] if "run" in step
            for line in step["run"].splitlines() if line.strip()]


def test_every_k8sdeploy_command_of_the_workflow_parses() -> None:
    commands = [line for line in run_lines() if line.startswith(".venv/bin/k8sdeploy ")]
    assert {shlex.split(line)[1] for line in commands} >= {"up", "status"}
    for line in commands:
        words = shlex.split(line.split(">")[0])[1:]
        command = main.get_command(click.Context(main), words[0])
        assert command is not None, line
        with click.Context(main) as parent:
            command.make_context(words[0], words[1:], parent=parent)  # raises on an unknown option or choice
        assert "--output" in words and words[words.index("--output") + 1] == "json", line


def test_every_make_target_of_the_workflow_exists() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    used = {line.split()[1] for line in run_lines() if line.startswith("make ")}
    assert used and used <= targets


def test_every_action_is_pinned_by_commit() -> None:
    """A tag such as v4 can be moved to other code by whoever controls the action; a commit cannot."""
    text = WORKFLOW.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        name, _, ref = action.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{name} is pinned to {ref!r}, not a commit"
        assert re.search(r"#\s*v\d", comment), f"{name}: say which release the commit is"
