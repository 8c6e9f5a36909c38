"""MySQL credentials for split-pods: a database and a user per service, derived from one secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import string

from deploy.model.errors import ConfigError
from deploy.render.layout import INIT_SQL_KEY, MYSQL, ROOT_PASSWORD_KEY, Layout, database_url_key

SECRET_VARIABLE = "K8SDEPLOY_MYSQL_SECRET"
MIN_SECRET_BITS = 128
# The alphabets a random secret is usually drawn from, smallest first: a secret is credited with
# log2(size) bits per character of the smallest one that holds all its characters.
ALPHABETS = (
    string.digits,
    "0123456789abcdef",
    string.digits + string.ascii_lowercase,
    string.ascii_letters + string.digits,
    string.ascii_letters + string.digits + "-_+/=",
    string.printable.strip(),
)


def mysql_secret() -> str:
    """$K8SDEPLOY_MYSQL_SECRET, from which the MySQL passwords are derived."""
    return os.environ.get(SECRET_VARIABLE, "")


def secret_bits(secret: str) -> float:
    """An upper estimate of a secret's entropy: length x log2(alphabet), where the alphabet is the smallest of
    ALPHABETS containing every character (hex: 4 bits each, base64: 6, printable ASCII: 6.6), and a run of
    one repeated character counts once. `openssl rand -hex 32` gives 256 bits; 16 letters, about 95."""
    alphabet = next((a for a in ALPHABETS if set(secret) <= set(a)), None)
    size = len(alphabet) if alphabet else 256  # outside printable ASCII: a byte per character at most
    runs = sum(1 for i, char in enumerate(secret) if i == 0 or char != secret[i - 1])
    return runs * math.log2(size) if secret else 0.0


def password(secret: str, env_name: str, user: str) -> str:
    """The same secret gives the same passwords, so rendering again never changes a database's users."""
    message = f"k8sdeploy/{env_name}/{user}".encode()
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


def secret_data(layout: Layout, env_name: str, secret: str) -> dict[str, str]:
    """The Secret MYSQL's data (base64): root password, init.sql, and each service's DATABASE_URL."""
    if layout.storage != "mysql" or layout.external_server is not None:
        return {}  # no server of ours; the URLs are in the environment's own Secret
    bits = secret_bits(secret)
    if bits < MIN_SECRET_BITS:
        state = (
            "is not set" if not secret else f"holds at most {bits:.0f} bits of entropy, fewer than {MIN_SECRET_BITS}"
        )
        raise ConfigError(
            f'database = "mysql" derives its passwords from {SECRET_VARIABLE}, which {state}',
            f"set {SECRET_VARIABLE} to a long random string (e.g. `openssl rand -hex 32`) and keep it",
        )
    users = {part.name: password(secret, env_name, part.name) for part in layout.parts if part.database}
    data = {ROOT_PASSWORD_KEY: password(secret, env_name, "root"), INIT_SQL_KEY: init_sql(users)}
    for user, user_password in users.items():
        address = layout.address(user, MYSQL)
        data[database_url_key(user)] = f"mysql://{user}:{user_password}@{address}/{user}"
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
