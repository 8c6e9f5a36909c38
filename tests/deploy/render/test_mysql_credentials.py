"""The MySQL Secret works on a real MariaDB: init.sql makes a database and user per service, each user
reaches only its own database, and the services migrate and serve with the DATABASE_URLs rendered."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from deploy.render.credentials import password
from tests.deploy.inputs import MYSQL_SECRET, VARIANTS, of_kind, render_variant
from tests.infra import MariaDB, mariadb_server, start_service, wait_ready

pytestmark = pytest.mark.mysql
USERS = ("authentication", "authorisation", "session", "person")


@pytest.fixture(scope="module")
def secret() -> dict[str, str]:
    data = of_kind(render_variant("split-pods-mysql").objects, "Secret")["mysql"]["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, secret: dict[str, str]) -> Iterator[MariaDB]:
    """A fresh server initialised as the image's entrypoint would: init.sql run by root over the socket."""
    work = tmp_path_factory.mktemp("mariadb-init")
    with mariadb_server(work) as db:
        subprocess.run(
            ["mariadb", f"--socket={work / 'mysqld.sock'}"],
            input=secret["init.sql"],
            text=True,
            check=True,
            capture_output=True,
        )
        yield db


def local_url(url: str, server: MariaDB) -> str:
    """The rendered URL with the in-cluster address replaced by the test server's."""
    return url.replace("@mysql:3306/", f"@127.0.0.1:{server.port}/")


def connect(user: str, secret: dict[str, str], server: MariaDB, database: str) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=user,
        database=database,
        password=password(MYSQL_SECRET, VARIANTS["split-pods-mysql"][0].name, user),
    )


def test_each_user_has_its_own_database_and_no_other(server: MariaDB, secret: dict[str, str]) -> None:
    for user in USERS:
        assert secret[f"{user}-database-url"].startswith(f"mysql://{user}:")
        with connect(user, secret, server, user) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE probe (id INT PRIMARY KEY)")
            cursor.execute("DROP TABLE probe")
        other = USERS[(USERS.index(user) + 1) % len(USERS)]
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            connect(user, secret, server, other)


def test_the_services_migrate_and_serve_with_the_rendered_urls(
    server: MariaDB, secret: dict[str, str], tmp_path: Path
) -> None:
    services = [
        start_service(
            user, tmp_path, {"DATABASE_URL": local_url(secret[f"{user}-database-url"], server), "DB_WAIT_SECONDS": "20"}
        )
        for user in USERS
    ]
    try:
        for service in services:
            wait_ready(service, timeout=60)
    finally:
        for service in services:
            service.stop()
