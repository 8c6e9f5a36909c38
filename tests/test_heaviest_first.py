"""The list that orders the heaviest test files first (tests/conftest.py) names files that exist: a renamed file
would silently fall back to its place in the alphabet."""

from __future__ import annotations

from tests.conftest import HEAVIEST_FIRST
from tests.infra import ROOT


def test_every_heaviest_file_exists_once() -> None:
    assert len(set(HEAVIEST_FIRST)) == len(HEAVIEST_FIRST)
    assert [name for name in HEAVIEST_FIRST if not (ROOT / "tests" / name).is_file()] == []
