"""Passwords are stored as salted scrypt hashes, never as text, at OWASP's recommended cost."""

import base64
import hashlib

from services.common.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password


def old_hash(password: str) -> str:
    """A hash as stored before the cost was raised: scrypt N=2^14, r=8, p=1."""
    salt = b"s" * 16
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("admin"), hash_password("admin")
    assert first != second and first.startswith("scrypt$")
    assert "admin" not in first
    assert verify_password("admin", first) and verify_password("admin", second)
    assert not verify_password("Admin", first)


def test_malformed_stored_values_never_verify() -> None:
    for stored in ("", "admin", "md5$x", "scrypt$a$b$c$d$e", "scrypt$16384$8$1$!!$!!"):
        assert not verify_password("admin", stored)


def test_new_hashes_use_owasps_scrypt_parameters() -> None:
    """OWASP Password Storage Cheat Sheet: N=2^14, r=8, p=5 is one of the settings equal to N=2^17, r=8, p=1."""
    for stored in (hash_password("admin"), DUMMY_HASH):
        scheme, n, r, p, salt, digest = stored.split("$")
        assert (scheme, n, r, p) == ("scrypt", "16384", "8", "5")
        assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
        assert not needs_rehash(stored)


def test_hashes_with_other_parameters_still_verify_and_need_a_rehash() -> None:
    stored = old_hash("admin")
    assert verify_password("admin", stored) and not verify_password("user", stored)
    assert needs_rehash(stored)
    for malformed in ("", "admin", "md5$x", "scrypt$a$b$c$d$e", "scrypt$16384$8$5$!!$!!"):
        assert needs_rehash(malformed)
