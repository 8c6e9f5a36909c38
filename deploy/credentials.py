"""MySQL credentials for split-pods: a database and a user per service, derived from one secret."""

from __future__ import annotations

import base64
import hashlib
import hmac

from .errors import ConfigError
from .layout import INIT_SQL_KEY, MYSQL, ROOT_PASSWORD_KEY, Layout, database_url_key

SECRET_VARIABLE = "K8SDEPLOY_MYSQL_SECRET"
MIN_SECRET_LENGTH = 16


def password(secret: str, environment: str, user: str) -> str:
    """The same secret gives the same passwords, so rendering again never changes a database's users."""
    message = f"k8sdeploy/{environment}/{user}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def init_sql(passwords: dict[str, str]) -> str:
    """Run once by the server when it creates its data directory: each service's database and user."""
    lines = []
    for user, secret in passwords.items():
        lines += [
            f"CREATE DATABASE IF NOT EXISTS `{user}`;",
            f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{secret}';",
            f"GRANT ALL PRIVILEGES ON `{user}`.* TO '{user}'@'%';",
        ]
    return "\n".join(lines) + "\n"


def secret_data(layout: Layout, environment: str, secret: str) -> dict[str, str]:
    """The Secret MYSQL's data (base64): root password, init.sql, and each service's DATABASE_URL."""
    if layout.storage != "mysql":
        return {}
    if len(secret) < MIN_SECRET_LENGTH:
        state = "is not set" if not secret else f"is shorter than {MIN_SECRET_LENGTH} characters"
        raise ConfigError(f'database = "mysql" derives its passwords from {SECRET_VARIABLE}, which {state}',
                          f"set {SECRET_VARIABLE} to a long random string (e.g. `openssl rand -hex 32`) and keep it")
    users = {part.name: password(secret, environment, part.name) for part in layout.parts if part.database}
    data = {ROOT_PASSWORD_KEY: password(secret, environment, "root"), INIT_SQL_KEY: init_sql(users)}
    for user, user_password in users.items():
        address = layout.address(user, MYSQL)
        data[database_url_key(user)] = f"mysql://{user}:{user_password}@{address}/{user}"
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
