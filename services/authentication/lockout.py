"""Failed logins, counted so that a stranger cannot lock the owner out.

A browser with the account's device cookie (services/authentication/devices.py) is judged on its own: a hard
limit per (account, device) within a window, nothing else. Any other client has a hard limit per (account, client
address) within the window, and, across addresses, a progressive slow-down of the account's untrusted logins: each
waits 1, 2, 4, ... seconds before it is judged, at most MAX_DELAY_SECONDS. It is a wait, never a refusal, so a
stranger's guesses cannot keep the owner's new browser out for longer than that cap, however many addresses they
use (a refusal until the latest failure's delay had passed let each new guess restart it).

Counting is atomic (one `UPDATE ... SET failures = failures + 1`; the first failure an INSERT, retried as an update
when another request inserted it first or InnoDB picked it as a deadlock's victim), since every replica shares the
table. The table keeps hashes of the account and the address, never what was typed (sometimes a password) or
where from.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import DateTime, Integer, String, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import Database

# Per (account, address): after this many failures within the window, that address is refused for that account
# (429) until the window ends, whatever the password.
MAX_FAILED_LOGINS = 5
FAILURE_WINDOW_SECONDS = 15 * 60
# Per account, over every address: failures beyond this many (each address counting at most MAX_FAILED_LOGINS, so
# one address alone never slows the account) make the account wait 1, 2, 4, ... seconds after its latest failure,
# at most MAX_DELAY_SECONDS: guessing spread over many addresses is slowed, the owner waits at most that long.
FREE_ACCOUNT_FAILURES = 2 * MAX_FAILED_LOGINS
MAX_DELAY_SECONDS = 8  # the stated cap: a new browser of the owner waits at most this long (docs/suite.md)
IPV6_PREFIX = 64  # an IPv6 client holds its whole /64: counted as one address
LOOPBACK = ("127.0.0.0/8", "::1/128")


class Base(DeclarativeBase):
    pass


class Failures:
    """A count of failed logins for an account from one client, in the window that began at first_failure_at."""

    KEY: ClassVar[str]  # the client's column
    account_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[datetime] = mapped_column(DateTime)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime)


class LoginFailure(Failures, Base):
    """Failed logins from a new browser, by the hash of its address."""

    __tablename__ = "login_failures"
    KEY = "address_hash"
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)


class DeviceFailure(Failures, Base):
    """Failed logins from a browser with a valid device cookie, by the hash of its device's nonce."""

    __tablename__ = "device_failures"
    KEY = "device_hash"
    device_hash: Mapped[str] = mapped_column(String(64), primary_key=True)


Counted = type[LoginFailure] | type[DeviceFailure]


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def client_address(
    peer: str | None, headers: Mapping[str, str], trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> str:
    """The client's address: the peer's own, unless the peer is a trusted proxy (the gateway), whose X-Real-IP
    or the last hop of its X-Forwarded-For names the client (the gateway sets them, never appends a client's).
    IPv6 addresses as their /64; anything unparsable as the peer's."""
    address = peer or ""
    if parse(address) is not None and any(parse(address) in network for network in trusted):
        forwarded = headers.get("x-real-ip") or headers.get("x-forwarded-for", "").split(",")[-1]
        if parse(forwarded.strip()) is not None:
            address = forwarded.strip()
    parsed = parse(address)
    if parsed is None:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def trusted_proxies(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """TRUSTED_PROXIES: comma-separated networks whose requests name the client; ValueError when one is not."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Refusal:
    message: str
    retry_after: int  # seconds


LOCKED_MESSAGE = "too many failed logins for this account"


@dataclass(frozen=True)
class Client:
    """Who tries to log in: an address, and the device of a valid device cookie for the account (None: a new
    browser). Counted by hashes only."""

    address: str
    device: str | None = None  # the device's nonce

    @property
    def counted(self) -> tuple[Counted, str]:
        """The table and key its failures are counted under."""
        if self.device is not None:
            return DeviceFailure, digest(f"device:{self.device}")
        return LoginFailure, digest(self.address)

    @property
    def queued(self) -> tuple[str, bool]:
        """Who it is in the hash workers' queues (services/common/passwords.py HashGate), and whether trusted."""
        if self.device is not None:
            return f"device:{self.device}", True
        return self.address, False


def key_of(model: Counted, account: str, key: str) -> tuple:
    return (model.account_hash == account, getattr(model, model.KEY) == key)


@dataclass(frozen=True)
class Lockout:
    database: Database
    limit: int = MAX_FAILED_LOGINS
    window: timedelta = timedelta(seconds=FAILURE_WINDOW_SECONDS)

    def judge(self, account: str, client: Client, at: datetime) -> Refusal | int:
        """Before its password is checked, in one read: why a login for `account` from `client` is refused now
        (only the client's own failures, its device's or its address's, refuse it), else the seconds it waits
        first: none for a trusted device; for a new browser, as the account's failures from new browsers over
        every address call for, at most MAX_DELAY_SECONDS."""
        model, key = client.counted
        with self.database.sessions() as session:
            own = session.scalar(select(model).where(*key_of(model, account, key)))
            if own is not None and own.failures >= self.limit and at < own.first_failure_at + self.window:
                return Refusal(LOCKED_MESSAGE, seconds(own.first_failure_at + self.window - at))
            if client.device is not None:
                return 0
            # every address's failures, each at most the limit: one address alone never slows the account
            capped = case((LoginFailure.failures > self.limit, self.limit), else_=LoginFailure.failures)
            total = session.scalar(
                select(func.sum(capped)).where(
                    LoginFailure.account_hash == account, LoginFailure.first_failure_at > at - self.window
                )
            )
        excess = int(total or 0) - FREE_ACCOUNT_FAILURES  # MariaDB sums to a Decimal
        return delay(excess) if excess > 0 else 0

    def succeeded(self, account: str, client: Client) -> None:
        """The owner logged in from `client`: its count starts again (other clients' stay)."""
        model, key = client.counted

        def clear() -> None:
            with self.database.sessions.begin() as session:
                session.execute(delete(model).where(*key_of(model, account, key)))

        again_on_conflict(clear)

    def failed(self, account: str, client: Client, at: datetime) -> None:
        """Count one failure in the window that is open, or open one."""
        model, hashed = client.counted
        key = key_of(model, account, hashed)

        def count() -> None:
            with self.database.sessions.begin() as session:
                counted = session.execute(
                    update(model)
                    .where(*key, model.first_failure_at > at - self.window)
                    .values(failures=model.failures + 1, last_failure_at=at)
                ).rowcount
                if counted:
                    return
                # only a window that has closed starts again: a row another request inserted since the UPDATE above
                # is in the open window, and overwriting its count with 1 would lose a failure (an attacker's guess)
                restarted = session.execute(
                    update(model)
                    .where(*key, model.first_failure_at <= at - self.window)
                    .values(failures=1, first_failure_at=at, last_failure_at=at)
                ).rowcount
                if not restarted:
                    row = {"account_hash": account, model.KEY: hashed}
                    session.add(model(**row, failures=1, first_failure_at=at, last_failure_at=at))

        again_on_conflict(count)


def again_on_conflict(work: Callable[[], None], attempts: int = 3) -> None:
    """`work` (one transaction), done again when another request inserted the same row first or InnoDB chose it
    as a deadlock's victim: the second try finds the other's row."""
    for attempt in range(attempts):
        try:
            return work()
        except (IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1 or not (isinstance(exc, IntegrityError) or deadlocked(exc)):
                raise


def deadlocked(exc: OperationalError) -> bool:
    """InnoDB chose this transaction as a deadlock's victim (1213) or its lock wait timed out (1205): two first
    failures for one key at once take gap locks and then insert. Trying again finds the other's row."""
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in (1205, 1213)


def delay(excess: int) -> int:
    """Seconds a new browser's login waits, `excess` failures beyond the free ones."""
    return min(MAX_DELAY_SECONDS, 2 ** min(excess - 1, 16))


def seconds(left: timedelta) -> int:
    return max(1, math.ceil(left.total_seconds()))
