"""Passwords are stored as salted scrypt hashes, never as text."""

from services.common.passwords import hash_password, verify_password


def test_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("admin"), hash_password("admin")
    assert first != second and first.startswith("scrypt$")
    assert "admin" not in first
    assert verify_password("admin", first) and verify_password("admin", second)
    assert not verify_password("Admin", first)


def test_malformed_stored_values_never_verify() -> None:
    for stored in ("", "admin", "md5$x", "scrypt$a$b$c$d$e", "scrypt$16384$8$1$!!$!!"):
        assert not verify_password("admin", stored)
