"""Password hashing with scrypt (hashlib), stored as a self-describing string, and the bound on how many hashes
one process runs at once so that they fit in its memory limit."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
import re
import secrets
import threading
from collections.abc import Callable
from typing import TypeVar

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
# A login waits at most this long for a free hash slot, and at most this many logins wait per slot; beyond
# either, it is answered 503 with Retry-After (the gateway's per-client burst fits in the queue: render.gateway).
HASH_WAIT_SECONDS = 20  # under nginx's 60 s proxy_read_timeout, with room for the hash itself
QUEUE_PER_SLOT = 4


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


def cgroup_memory_limit() -> int | None:
    """The memory limit of the cgroup this process runs in (v2, else v1), None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as file:
                raw = file.read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 2**60:  # v1 writes a huge number for "no limit", v2 "max"
            return int(raw)
    return None


def return_freed_memory() -> None:
    """Make glibc give each freed hash's 16 MiB back to the system at once: a fixed mmap threshold, so large
    blocks are never kept in a thread's arena (glibc otherwise raises the threshold to the largest block freed,
    and each of up to 8 arenas per core may then keep tens of MiB). Not glibc: nothing to do."""
    import ctypes.util  # here: k8sdeploy reads this module's settings, and only the services call this

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return
    if mallopt is not None:
        m_mmap_threshold = -3
        mallopt(m_mmap_threshold, 1 * MIB)


class HashBusy(Exception):
    """Every hash slot stayed taken for the wait bound (or too many logins already wait): answer 503."""

    def __init__(self, retry_after: int):
        super().__init__(f"all hash slots busy; retry after {retry_after}s")
        self.retry_after = retry_after


T = TypeVar("T")


class HashGate:
    """At most `slots` hashes at once; a caller waits at most `wait` seconds for a slot, and is refused at once
    when `slots * QUEUE_PER_SLOT` callers already wait."""

    def __init__(self, slots: int, wait: float = HASH_WAIT_SECONDS, queue: int | None = None):
        self.slots, self.wait = slots, wait
        self.queue = slots * QUEUE_PER_SLOT if queue is None else queue
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.waiting = 0

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.wait / 4))

    def run(self, work: Callable[[], T]) -> T:
        if not self._free.acquire(blocking=False):
            with self._lock:
                if self.waiting >= self.queue:
                    raise HashBusy(self.retry_after)
                self.waiting += 1
            try:
                acquired = self._free.acquire(timeout=self.wait)
            finally:
                with self._lock:
                    self.waiting -= 1
            if not acquired:
                raise HashBusy(self.retry_after)
        try:
            return work()
        finally:
            self._free.release()

    def verify(self, password: str, stored: str) -> bool:
        return self.run(lambda: verify_password(password, stored))

    def hash(self, password: str) -> str:
        return self.run(lambda: hash_password(password))


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password", salt=b"\0" * 16)


def __getattr__(name: str) -> str:
    """DUMMY_HASH, checked against when the user does not exist so that a miss costs as long as a hit: made at
    first use, not at import (k8sdeploy imports this module for every command)."""
    if name == "DUMMY_HASH":
        return _dummy_hash()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
