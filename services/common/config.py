"""Service configuration, read only from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    host: str
    port: int
    database_url: str
    db_wait_seconds: float
    log_level: str
    drain_seconds: int = 20  # after SIGTERM: in-flight requests finish within it, then the process ends

    @property
    def database_display(self) -> str:
        """The database URL with any password hidden, safe for logs."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)


def env_int(name: str, default: int, env: dict[str, str] | None = None) -> int:
    raw = (env if env is not None else os.environ).get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set it to e.g. {default}") from None


def database_url(name: str, env: dict[str, str]) -> str:
    """DATABASE_URL when given (mysql:// means PyMySQL), else SQLite at DATABASE_PATH."""
    url = env.get("DATABASE_URL", "")
    if url:
        if url.startswith("mysql://"):
            url = "mysql+pymysql://" + url[len("mysql://") :]
        if not url.startswith(("mysql+pymysql://", "sqlite://")):
            raise ConfigError(f"DATABASE_URL must start with mysql:// or sqlite://, got {url.split(':', 1)[0]}://")
        return url
    path = Path(env.get("DATABASE_PATH") or f"data/{name}.db")
    return f"sqlite:///{path.resolve()}"


def load(name: str, default_port: int, *, database: bool = True, env: dict[str, str] | None = None) -> ServiceConfig:
    """Read a service's settings; `database=False` for a service that keeps no data."""
    env = dict(os.environ if env is None else env)
    return ServiceConfig(
        name=name,
        host=env.get("HOST") or "0.0.0.0",
        port=env_int("PORT", default_port, env),
        database_url=database_url(name, env) if database else "",
        db_wait_seconds=float(env_int("DB_WAIT_SECONDS", 60, env)),
        log_level=(env.get("LOG_LEVEL") or "info").lower(),
        drain_seconds=env_int("DRAIN_SECONDS", 20, env),
    )
