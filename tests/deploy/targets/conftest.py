"""Fixtures every target's tests share."""

from __future__ import annotations

import pytest


@pytest.fixture
def said() -> list[str]:
    """What the target under test says, line by line (its `say`)."""
    return []
