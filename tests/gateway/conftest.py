"""Fixtures of the gateway's tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from deploy.loopback import LocalSuite
from tests.helpers import client


@pytest.fixture
def http(suite: LocalSuite) -> Iterator[httpx.Client]:
    """A browser-like client of the suite's gateway, with no session yet."""
    with client(suite.url) as http:
        yield http
