"""The authentication API: `POST /api/authentication` with form fields emailaddress and password, from the gateway;
it answers with the proof the session service needs to open a session for that user (a token of authentication
for session, services/common/identity.py)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import String, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.authentication.devices import DeviceCookies
from services.authentication.lockout import (
    FAILURE_WINDOW_SECONDS,
    LOOPBACK,
    MAX_FAILED_LOGINS,
    Client,
    Lockout,
    Refusal,
    client_address,
    digest,
    trusted_proxies,
)
from services.common.app import create_app, shared
from services.common.config import ConfigError, ServiceConfig, env_int
from services.common.db import Database
from services.common.identity import Keyring, from_environment
from services.common.passwords import (
    DUMMY_HASH,
    HASH_WAIT_SECONDS,
    HashBusy,
    HashGate,
    cgroup_memory_limit,
    return_freed_memory,
)
from services.common.seed import SeedUser, seed_users
from suitekit.emails import normalise_email
from suitekit.passwords import MIB, hash_slots, needs_rehash, parse_memory

log = logging.getLogger(__name__)

BUSY_MESSAGE = "too many logins at once; try again shortly"
OVER_SHARE_MESSAGE = "too many logins at once from this client; try again shortly"
FAILED_MESSAGE = "invalid email address or password"
DEVICE_HEADER = "Device-Cookie"  # a new device cookie for the browser that logged in (the gateway sets it)
MAX_EMAIL, MAX_PASSWORD = 254, 1024
# Where neither MEMORY_LIMIT nor a cgroup says: the limit k8sdeploy gives the container (deploy/render/layout.py).
DEFAULT_MEMORY_LIMIT = 256 * MIB

Clock = Callable[[], datetime]


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def seed(database: Database, users: tuple[SeedUser, ...] | None) -> None:
    """Each seeded user exists with its address and password hash, and a user no longer seeded is removed (the
    suite has no other users). None (no SEED_USERS): nothing changes."""
    if users is None:
        return
    with database.sessions.begin() as session:
        ids = [wanted.id for wanted in users]
        for gone in session.scalars(select(User.id).where(User.id.not_in(ids))).all():
            log.info("removed user %d: no longer seeded", gone)
        session.execute(delete(User).where(User.id.not_in(ids)))
        session.flush()
        for wanted in users:
            user = session.get(User, wanted.id)
            if user is None:
                session.add(User(id=wanted.id, email=wanted.email, password_hash=wanted.password_hash))
                log.info("seeded user %d", wanted.id)
            elif (user.email, user.password_hash) != (wanted.email, wanted.password_hash):
                user.email, user.password_hash = wanted.email, wanted.password_hash
                log.info("updated seeded user %d", wanted.id)


def memory_limit(env: dict[str, str] | None = None) -> int:
    """The process's memory limit: MEMORY_LIMIT (a quantity such as 256Mi, set by k8sdeploy from the container's
    limit) or the cgroup's, the lower of the two; DEFAULT_MEMORY_LIMIT when neither says."""
    raw = (os.environ if env is None else env).get("MEMORY_LIMIT", "")
    try:
        configured = parse_memory(raw) if raw else None
    except ValueError as exc:
        raise ConfigError(f"MEMORY_LIMIT: {exc}; set it to the container's memory limit") from None
    known = [limit for limit in (configured, cgroup_memory_limit()) if limit]
    return min(known) if known else DEFAULT_MEMORY_LIMIT


def hash_gate() -> HashGate:
    """The bound on hashes at once for this process's memory limit, and how long a login waits for one."""
    limit = memory_limit()
    gate = HashGate(hash_slots(limit), wait=env_int("HASH_WAIT_SECONDS", HASH_WAIT_SECONDS))
    return_freed_memory()
    log.info("memory limit %d MiB: %d hashes at once, %d more may wait", limit // MIB, gate.slots, gate.queue)
    return gate


def proxies(env: dict[str, str] | None = None) -> tuple:
    """TRUSTED_PROXIES: the networks of the gateway, whose X-Real-IP / X-Forwarded-For name the client."""
    raw = (os.environ if env is None else env).get("TRUSTED_PROXIES") or ",".join(LOOPBACK)
    try:
        return trusted_proxies(raw)
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc}; give comma-separated networks such as 127.0.0.0/8") from None


def busy(exc: HashBusy) -> PlainTextResponse:
    message = OVER_SHARE_MESSAGE if exc.status == 429 else BUSY_MESSAGE
    return PlainTextResponse(message, status_code=exc.status, headers={"Retry-After": str(exc.retry_after)})


def malformed(email: str, password: str) -> bool:
    """A login that no user could pass, refused without a hash: no address, no password, or either too long."""
    return "@" not in email or not password or len(email) > MAX_EMAIL or len(password) > MAX_PASSWORD


@dataclass(frozen=True)
class Logins:
    """What authentication's route shares (build makes it): the users, the keys and device cookies, the hash gate
    and the threads logins run in, the lockout and the proxies that name the client, the clock and the sleep."""

    database: Database
    keyring: Keyring
    gate: HashGate
    devices: DeviceCookies
    lockout: Lockout
    trusted: tuple
    threads: anyio.CapacityLimiter
    clock: Clock
    sleep: Callable[[float], Awaitable[None]]

    def now(self) -> datetime:
        return self.clock().replace(microsecond=0)  # MariaDB's DATETIME keeps whole seconds

    def login(self, email: str, password: str, account: str, client: Client) -> PlainTextResponse:
        with self.database.sessions() as session:
            user = session.scalar(select(User).where(User.email == email))
        stored = user.password_hash if user else DUMMY_HASH  # an unknown address costs a hash too, in its share
        who, trusted_device = client.queued
        if self.gate.verify(password, stored, who, trusted_device) and user is not None:
            self.lockout.succeeded(account, client)
            if needs_rehash(stored):
                self.rehash(user, password)
            claims = {"jti": secrets.token_urlsafe(16), "email": email}
            proof = self.keyring.sign("session", str(user.id), claims=claims)
            return PlainTextResponse(proof, headers={DEVICE_HEADER: self.devices.issue(account)})
        self.lockout.failed(account, client, self.now())
        return PlainTextResponse(FAILED_MESSAGE, status_code=401)

    def rehash(self, user: User, password: str) -> None:
        """Store the password hashed with today's parameters; the login succeeds even if this fails."""
        try:
            renewed = self.gate.hash(password)
            with self.database.sessions.begin() as session:
                session.execute(
                    update(User)
                    .where(User.id == user.id, User.password_hash == user.password_hash)
                    .values(password_hash=renewed)
                )
        except HashBusy:
            return  # the next login tries again
        except SQLAlchemyError as exc:
            log.warning(
                "could not store user %d's password with new hash parameters: %s", user.id, str(exc).splitlines()[0]
            )
        else:
            log.info("stored user %d's password with new hash parameters", user.id)


State = Annotated[Logins, Depends(shared)]
router = APIRouter()


@router.post("/api/authentication", response_class=PlainTextResponse)
async def authenticate(  # noqa: ANN201
    request: Request, logins: State, emailaddress: str = Form(""), password: str = Form(""), device: str = Form("")
):
    """The gateway sends the form and the browser's device cookie for logins (`device`, maybe empty)."""
    email = normalise_email(emailaddress)
    if malformed(email, password):
        return PlainTextResponse(FAILED_MESSAGE, status_code=401)
    account = digest(email)
    known = logins.devices.verify(device, account)
    address = client_address(request.client.host if request.client else None, request.headers, logins.trusted)
    client = Client(address, known.nonce if known else None)
    at = logins.now()
    judged = await anyio.to_thread.run_sync(logins.lockout.judge, account, client, at, limiter=logins.threads)
    if isinstance(judged, Refusal):
        retry = {"Retry-After": str(judged.retry_after)}
        return PlainTextResponse(judged.message, status_code=429, headers=retry)
    # a new browser's login waits as the account's failures elsewhere call for (at most MAX_DELAY_SECONDS),
    # holding no thread and no hash slot; a trusted device's does not wait
    wait = judged
    if wait:
        await logins.sleep(wait)
    try:
        return await anyio.to_thread.run_sync(logins.login, email, password, account, client, limiter=logins.threads)
    except HashBusy as exc:
        return busy(exc)


def build(
    config: ServiceConfig,
    database: Database,
    clock: Clock = utcnow,
    keyring: Keyring | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> FastAPI:
    """`clock` gives the current UTC time (naive) and `sleep` waits out a slow-down; tests pass their own to move
    past the window and to see the waits without sleeping them."""
    keyring = keyring or from_environment(config.name)
    gate = hash_gate()
    devices = DeviceCookies(keyring)
    seed(database, seed_users())
    lockout = Lockout(
        database,
        limit=env_int("LOGIN_FAILURE_LIMIT", MAX_FAILED_LOGINS),
        window=timedelta(seconds=env_int("LOGIN_FAILURE_WINDOW_SECONDS", FAILURE_WINDOW_SECONDS)),
    )
    trusted = proxies()
    app = create_app(config, keyring, ("nginx-lua",), database.readiness)
    # A login waiting for a hash slot holds a thread: logins get threads of their own, enough for every slot and
    # every waiter, so the bound is the gate's (an answer within its wait), never a queue for threads.
    threads = anyio.CapacityLimiter(gate.slots + gate.queue + 2)
    app.state.shared = Logins(database, keyring, gate, devices, lockout, trusted, threads, clock, sleep)
    app.include_router(router)
    return app
