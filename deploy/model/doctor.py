"""What `k8sdeploy doctor` finds: one line per check, with its fix where a deploy could not go through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One check's answer: `ok`, or what is missing (`message`) and how to fix it (`fix`), each one line."""

    check: str  # what was checked: apis, permissions, quota, capacity, tls, keys, bases, identity, ...
    ok: bool
    message: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.check}: {self.message}" + (f" -> {self.fix}" if self.fix and not self.ok else "")


def passed(check: str, message: str) -> Finding:
    return Finding(check, True, message)


def missing(check: str, message: str, fix: str) -> Finding:
    return Finding(check, False, message, fix)


def failures(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    return tuple(finding for finding in findings if not finding.ok)
