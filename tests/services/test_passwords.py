"""Passwords are stored as salted scrypt hashes, never as text, at OWASP's recommended cost."""

import base64
import hashlib

from services.common.passwords import DUMMY_HASH
from suitekit.passwords import hash_password, needs_rehash, verify_password


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
    from suitekit.passwords import HASH_MEMORY, MIB, PROCESS_MEMORY, hash_slots, login_burst, parse_memory

    assert HASH_MEMORY == 128 * 8 * 2**14 + 128 * 8 * 5 + MIB  # scrypt's V and B, and a MiB
    limit = parse_memory("256Mi")
    assert limit == 256 * MIB and parse_memory("1G") == 10**9 and parse_memory("268435456") == limit
    assert hash_slots(limit) == 8 and login_burst(limit) == 7
    assert PROCESS_MEMORY + hash_slots(limit) * HASH_MEMORY <= limit
    assert hash_slots(parse_memory("512Mi")) == 23
    assert hash_slots(64 * MIB) == 1 and login_burst(64 * MIB) == 1  # never none


def test_a_memory_quantity_that_is_not_one_is_refused() -> None:
    import pytest

    from suitekit.passwords import parse_memory

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


class Held:
    """Logins run through a gate one at a time from threads, each held in its work until released: what the gate
    lets run, and in which order, without any timing."""

    def __init__(self, gate) -> None:  # noqa: ANN001 - services.common.passwords.HashGate
        import threading

        self.gate, self.order, self.threads = gate, [], []
        self.release: dict[str, threading.Event] = {}
        self.answers: dict[str, object] = {}

    def send(self, name: str, client: str, trusted: bool = False) -> None:
        """Start `name`'s login and return once it runs or waits in the gate (or was answered)."""
        import threading

        self.release[name] = threading.Event()
        before = self.gate.waiting_of(client)

        def work() -> str:
            self.order.append(name)
            self.release[name].wait(10)
            return name

        def login() -> None:
            try:
                self.answers[name] = self.gate.run(work, client, trusted)
            except Exception as exc:  # noqa: BLE001 - HashBusy, looked at by the test
                self.answers[name] = exc

        thread = threading.Thread(target=login, daemon=True)
        thread.start()
        self.threads.append(thread)
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if name in self.order or name in self.answers or self.gate.waiting_of(client) > before:
                return
            time.sleep(0.001)
        raise AssertionError(f"{name} neither ran nor waited")

    def finish(self, name: str) -> None:
        """Let `name`'s hash end, and wait until the slot has gone to the next in turn (or back to the pool)."""
        import time

        running = len(self.order)
        waiting = self.gate.waiting
        self.release[name].set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and waiting and len(self.order) == running:
            time.sleep(0.001)

    def answered(self, name: str) -> object:
        """`name`'s answer, once its thread has one."""
        import time

        deadline = time.monotonic() + 10
        while name not in self.answers and time.monotonic() < deadline:
            time.sleep(0.001)
        return self.answers[name]

    def drain(self) -> None:
        for event in self.release.values():
            event.set()
        for thread in self.threads:
            thread.join(10)


def test_a_clients_flood_waits_behind_itself_and_trusted_devices_go_first() -> None:
    from services.common.passwords import HashGate

    held = Held(HashGate(slots=1, wait=30, queue=20, share=5))
    held.send("flood-0", "203.0.113.7")  # runs
    for i in range(1, 5):
        held.send(f"flood-{i}", "203.0.113.7")  # waits: four of the flood's in its own queue
    held.send("honest", "198.51.100.2")
    held.send("other-flood-0", "203.0.113.8")
    held.send("trusted", "device:abc", trusted=True)
    for name in ["flood-0", "trusted", "flood-1", "honest", "other-flood-0", "flood-2"]:
        assert held.order[-1] == name
        held.finish(name)
    assert held.order == ["flood-0", "trusted", "flood-1", "honest", "other-flood-0", "flood-2", "flood-3"]
    held.drain()


def test_over_its_share_a_client_is_refused_without_a_hash_and_a_full_queue_makes_room_for_a_newcomer() -> None:
    from services.common.passwords import HashBusy, HashGate

    held = Held(HashGate(slots=1, wait=30, queue=4, share=3))
    held.send("flood-0", "203.0.113.7")  # runs
    for i in range(1, 4):
        held.send(f"flood-{i}", "203.0.113.7")  # its share: three waiting
    held.send("flood-4", "203.0.113.7")
    over = held.answers["flood-4"]
    assert isinstance(over, HashBusy) and (over.status, over.retry_after) == (429, 8)
    held.send("other-0", "203.0.113.8")  # the queue is full now (4)
    held.send("honest", "198.51.100.2")  # fewer waiting than the longest queue: takes its newest one's place
    evicted = held.answered("flood-3")
    assert isinstance(evicted, HashBusy) and evicted.status == 503
    held.send("other-1", "203.0.113.8")  # as many waiting as the longest but one: no room, refused
    assert isinstance(held.answers["other-1"], HashBusy) and held.answers["other-1"].status == 503
    for name in ["flood-0", "flood-1", "other-0", "honest", "flood-2"]:
        assert held.order[-1] == name
        held.finish(name)
    held.drain()
    assert [held.answers[name] for name in ("flood-0", "honest")] == ["flood-0", "honest"]
    assert "flood-4" not in held.order and "flood-3" not in held.order  # refused without a hash
