"""What the in-process service tests share: a fresh database of each kind."""

from __future__ import annotations

import uuid
from pathlib import Path

import pymysql
import pytest


@pytest.fixture(params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file, or a database of its own on the session's MariaDB server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    server = request.getfixturevalue("mariadb")
    name = f"service_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(host="127.0.0.1", port=server.port, user=server.user, password=server.password)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    connection.close()
    return f"{server.url}/{name}"
