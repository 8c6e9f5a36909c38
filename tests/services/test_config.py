"""Service settings come only from the environment, and bad values are refused with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, load


def test_sqlite_by_default_at_database_path(tmp_path: Path) -> None:
    config = load("person", 8085, env={"DATABASE_PATH": str(tmp_path / "p.db")})
    assert config.database_url == f"sqlite:///{tmp_path / 'p.db'}"
    assert (config.port, config.host) == (8085, "0.0.0.0")


def test_mysql_url_uses_pymysql_and_hides_the_password() -> None:
    config = load("person", 8085, env={"DATABASE_URL": "mysql://u:secret@db:3306/person", "PORT": "9000"})
    assert config.database_url == "mysql+pymysql://u:secret@db:3306/person"
    assert "secret" not in config.database_display
    assert config.port == 9000


def test_a_service_without_data_has_no_database() -> None:
    assert load("frontend", 8081, database=False, env={}).database_url == ""


@pytest.mark.parametrize(
    "env,message",
    [
        ({"PORT": "eighty"}, "PORT='eighty' is not a whole number"),
        ({"DATABASE_URL": "postgres://x/y"}, "must start with mysql:// or sqlite://"),
        ({"DB_WAIT_SECONDS": "1m"}, "DB_WAIT_SECONDS='1m'"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load("person", 8085, env=env)
