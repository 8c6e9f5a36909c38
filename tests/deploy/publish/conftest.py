"""Fixtures of the publish tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.registries import Registry, registry_server


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry of the module's own that asks for htpasswd credentials: user ci, password s3cret."""
    with registry_server(tmp_path_factory.mktemp("auth-registry"), users={"ci": "s3cret"}) as server:
        yield server
