"""Password hashing with scrypt (hashlib), stored as a self-describing string."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP Password Storage Cheat Sheet (scrypt): N=2^17, r=8, p=1 (128 MiB per hash), or an equivalent
# lower-memory setting. We take N=2^14, r=8, p=5: 16 MiB per hash (128 * r * N bytes), within
# OpenSSL's default 32 MiB limit, because the services run several per node and hash in a thread pool.
_N, _R, _P = 2**14, 8, 5
_DKLEN = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


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


# Checked against when the user does not exist, so that a miss costs as long as a hit.
DUMMY_HASH = hash_password("not a password", salt=b"\0" * 16)
