"""Fixtures of the signing tests: cosign built from its pinned Go module (tools/cosign), the reference verifier."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.infra import ROOT


@pytest.fixture(scope="session")
def cosign() -> Path:
    """The cosign binary; `make test` builds it (make cosign), a machine without it builds it here (minutes)."""
    built = subprocess.run([str(ROOT / "tools" / "cosign" / "build.sh")], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    return Path(built.stdout.strip())
