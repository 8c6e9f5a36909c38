"""The Runner: an environment's verbs made of typed stages (stages.py), each verb's module its own: the deploys
that need no build (deploys.py: promote, rollback), the chores (chores.py: status, backups, down, users, keys,
doctor), and the Runner with a build stage (building.py: up, dev, diff). Each deploy's outcome is one frozen
UpResult holding the Release it recorded (result.py)."""

from deploy.runner.building import BuildingRunner, Runner
from deploy.runner.deploys import Gates
from deploy.runner.result import NoEarlierRelease, RollbackFailed, RolledBack, Stopwatch, UpResult

__all__ = [
    "BuildingRunner",
    "Gates",
    "NoEarlierRelease",
    "RollbackFailed",
    "RolledBack",
    "Runner",
    "Stopwatch",
    "UpResult",
]
