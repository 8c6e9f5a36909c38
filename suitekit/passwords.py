"""Password hashing with scrypt (hashlib), stored as a self-describing string, and how many hashes fit in a
process's memory: what `k8sdeploy user` hashes with and the gateway's login burst is sized by, and what the
authentication service verifies with (services/common/passwords.py adds its bound on hashes in flight)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# OWASP Password Storage Cheat Sheet (scrypt): N=2^17, r=8, p=1 (128 MiB per hash), or an equivalent
# lower-memory setting. We take N=2^14, r=8, p=5: 16 MiB per hash (128 * r * N bytes), within
# OpenSSL's default 32 MiB limit, because the services run several per node and hash in a thread pool.
_N, _R, _P = 2**14, 8, 5
_DKLEN = 32

MIB = 1024 * 1024
# What one hash in flight holds: scrypt's V (128 * r * N bytes) and B (128 * r * p), and a MiB for the rest.
HASH_MEMORY = 128 * _R * _N + 128 * _R * _P + MIB
# What a service process holds besides its hashes: Python, FastAPI, SQLAlchemy and a database driver, threads
# and their buffers (about 90 MiB measured as the peak RSS of authentication under a login burst, less hashes).
PROCESS_MEMORY = 112 * MIB


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return hash_prefix(salt) + _b64(digest)


def hash_prefix(salt: bytes) -> str:
    """What a hash made now with `salt` starts with: the scheme, today's parameters and the salt."""
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}$"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    """True when `stored` was not made with today's parameters: hash the password again at the next login."""
    try:
        scheme, n, r, p, _salt, digest = stored.split("$")
        current = (int(n), int(r), int(p), len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return True
    return scheme != "scrypt" or current != (_N, _R, _P, _DKLEN)


def hash_slots(memory_limit: int) -> int:
    """How many hashes a process with `memory_limit` bytes may run at once (at least one)."""
    return max(1, (memory_limit - PROCESS_MEMORY) // HASH_MEMORY)


def login_burst(memory_limit: int) -> int:
    """The gateway's per-client login burst for an authentication process with `memory_limit` bytes: one client
    alone never makes logins wait for a slot (burst + 1 requests pass at once)."""
    return max(1, hash_slots(memory_limit) - 1)


_QUANTITY = re.compile(r"^\s*(\d+)\s*(Ki|Mi|Gi|K|M|G|k)?\s*$")
_UNITS = {None: 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def parse_memory(value: str) -> int:
    """Bytes in a memory quantity as Kubernetes writes them ("256Mi", "1G", "268435456"); ValueError if not one."""
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a memory quantity such as 256Mi")
    return int(match.group(1)) * _UNITS[match.group(2)]
