"""The bound on how many password hashes one process runs at once, so that they fit in its memory limit, and the
fair share of them between clients (HashGate). The hashing itself is suitekit.passwords, which k8sdeploy
hashes users' passwords with too."""

from __future__ import annotations

import ctypes.util
import functools
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from suitekit.passwords import MIB, hash_password, verify_password

# A login waits at most this long for a free hash slot, and at most this many logins wait per slot; beyond
# either, it is answered 503 with Retry-After (the gateway's per-client burst fits in the queue: render.gateway).
HASH_WAIT_SECONDS = 20  # under nginx's 60 s proxy_read_timeout, with room for the hash itself
QUEUE_PER_SLOT = 4


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
    """A login gets no hash slot: over its client's share of the queue (429), or the whole queue full or its wait
    bound passed (503). Either way it is answered at once, without a hash, with Retry-After."""

    def __init__(self, retry_after: int, status: int = 503):
        super().__init__(f"no hash slot ({status}); retry after {retry_after}s")
        self.retry_after = retry_after
        self.status = status


T = TypeVar("T")


@dataclass(eq=False)
class _Ticket:
    client: str
    trusted: bool
    granted: bool = False
    evicted: bool = False
    event: threading.Event = field(default_factory=threading.Event)


class HashGate:
    """At most `slots` hashes at once, shared fairly: a login that finds every slot taken waits in its client's own
    queue, and a freed slot goes to the clients in turn (round robin), trusted devices' queues first. So a client's
    flood waits behind itself, never in front of another client's one login.

    A client may have at most `share` logins waiting: one more is refused at once (429, without a hash). At most
    `queue` wait in all: when full, a client with fewer waiting than the longest queue takes the place of that
    queue's newest login (which is answered 503), else it is refused (503). A login waits at most `wait` seconds.
    `client` is who is counted: the device of a valid device cookie, else the address."""

    def __init__(self, slots: int, wait: float = HASH_WAIT_SECONDS, queue: int | None = None, share: int = 0):
        self.slots, self.wait = slots, wait
        self.queue = slots * QUEUE_PER_SLOT if queue is None else queue
        self.share = share or max(1, min(self.queue, slots + 1))
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: dict[str, deque[_Ticket]] = {}
        self._turns: dict[bool, deque[str]] = {True: deque(), False: deque()}  # trusted?: clients with waiters

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(tickets) for tickets in self._waiting.values())

    def waiting_of(self, client: str) -> int:
        with self._lock:
            return len(self._waiting.get(client, ()))

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.wait / 4))

    def run(self, work: Callable[[], T], client: str = "", trusted: bool = False) -> T:
        ticket = self._enter(client, trusted)
        if ticket is not None:
            ticket.event.wait(self.wait)
            with self._lock:
                if not ticket.granted:
                    self._forget(ticket)
                    raise HashBusy(self.retry_after)
        try:
            return work()
        finally:
            self._leave()

    def _enter(self, client: str, trusted: bool) -> _Ticket | None:
        """None: a slot is this caller's now; else its ticket in its client's queue."""
        with self._lock:
            if self._running < self.slots and not any(self._turns.values()):
                self._running += 1
                return None
            own = self._waiting.setdefault(client, deque())
            if len(own) >= self.share:
                raise HashBusy(self.retry_after, status=429)
            if sum(len(tickets) for tickets in self._waiting.values()) >= self.queue:
                longest = max(self._waiting.values(), key=len)
                if len(longest) <= len(own) + 1:
                    if not own:
                        del self._waiting[client]
                    raise HashBusy(self.retry_after)
                evicted = longest[-1]
                self._forget(evicted)
                evicted.evicted = True
                evicted.event.set()
            ticket = _Ticket(client, trusted)
            if not own:
                self._turns[trusted].append(client)
            self._waiting.setdefault(client, own).append(ticket)
            return ticket

    def _forget(self, ticket: _Ticket) -> None:
        """Take a ticket out of its queue (the lock held)."""
        queue = self._waiting.get(ticket.client)
        if queue is not None and ticket in queue:
            queue.remove(ticket)
            if not queue:
                del self._waiting[ticket.client]
                for turns in self._turns.values():
                    if ticket.client in turns:
                        turns.remove(ticket.client)

    def _leave(self) -> None:
        """The slot goes to the next client in turn (trusted first), or back to the pool."""
        with self._lock:
            self._running -= 1
            for trusted in (True, False):
                turns = self._turns[trusted]
                if turns:
                    client = turns.popleft()
                    queue = self._waiting[client]
                    ticket = queue.popleft()
                    if queue:
                        turns.append(client)
                    else:
                        del self._waiting[client]
                    ticket.granted = True
                    self._running += 1
                    ticket.event.set()
                    return

    def verify(self, password: str, stored: str, client: str = "", trusted: bool = False) -> bool:
        return self.run(lambda: verify_password(password, stored), client, trusted)

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
