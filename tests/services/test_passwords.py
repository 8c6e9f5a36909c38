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


# the bound on hashes at once


def test_the_hash_bound_follows_from_the_memory_limit_and_scryptss_parameters() -> None:
    from services.common.passwords import HASH_MEMORY, MIB, PROCESS_MEMORY, hash_slots, login_burst, parse_memory

    assert HASH_MEMORY == 128 * 8 * 2**14 + 128 * 8 * 5 + MIB  # scrypt's V and B, and a MiB
    limit = parse_memory("256Mi")
    assert limit == 256 * MIB and parse_memory("1G") == 10**9 and parse_memory("268435456") == limit
    assert hash_slots(limit) == 8 and login_burst(limit) == 7
    assert PROCESS_MEMORY + hash_slots(limit) * HASH_MEMORY <= limit
    assert hash_slots(parse_memory("512Mi")) == 23
    assert hash_slots(64 * MIB) == 1 and login_burst(64 * MIB) == 1  # never none


def test_a_memory_quantity_that_is_not_one_is_refused() -> None:
    import pytest

    from services.common.passwords import parse_memory

    for raw in ("", "256MB", "lots", "-1Mi", "1.5Gi"):
        with pytest.raises(ValueError, match="not a memory quantity"):
            parse_memory(raw)


def test_the_gate_runs_at_most_its_slots_at_once_and_refuses_what_would_wait_too_long() -> None:
    import threading
    import time

    import pytest

    from services.common.passwords import HashBusy, HashGate

    gate = HashGate(slots=2, wait=0.5, queue=3)
    running, peak, lock, release = [0], [0], threading.Lock(), threading.Event()

    def work() -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1
        return "done"

    results: list[object] = []

    def call() -> None:
        try:
            results.append(gate.run(work))
        except HashBusy as exc:
            results.append(exc.retry_after)

    threads = [threading.Thread(target=call) for _ in range(7)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    # two run, three wait, two are refused at once (the queue is full)
    assert results == [1, 1]
    time.sleep(0.7)  # the three waiting ones give up after 0.5 s
    assert sorted(map(str, results)) == ["1"] * 5
    release.set()
    for thread in threads:
        thread.join(5)
    assert results.count("done") == 2 and peak[0] == 2
    assert gate.run(lambda: "free again") == "free again"
    no_queue = HashGate(slots=1, wait=5, queue=0)
    assert no_queue.run(lambda: "a free slot") == "a free slot"
    with pytest.raises(HashBusy):  # its one slot taken, and no place to wait: refused at once
        no_queue.run(lambda: no_queue.run(lambda: None))
