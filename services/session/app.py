"""The session API, for the gateway only: open a session (with authentication's proof of who logged in, once per
proof), look a session token up (answering the user contexts the parts verify: services/common/context.py), end it.
Sessions end after an idle time and at an absolute lifetime, are rotated when their user's role changes, and end
when their user is no longer seeded. Tokens travel in request bodies, never in a URI (nginx logs URIs)."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import DateTime, Integer, String, delete, orm, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.concurrency import run_in_threadpool

from services.common import context
from services.common.app import caller, create_app, shared
from services.common.config import ConfigError, ServiceConfig, env_int
from services.common.db import Database
from services.common.identity import MAX_TOKEN_SECONDS, Caller, Keyring, Unverified, from_environment
from services.common.seed import SeedUser, seed_users

log = logging.getLogger(__name__)
TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG
# OWASP Session Management cheat sheet: an idle timeout (15-30 minutes for low-risk applications) and an absolute
# one (4-8 hours for applications used for a working day), both enforced by the server.
IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 8 * 3600
Clock = Callable[[], datetime]


class Base(DeclarativeBase):
    pass


class Session(Base):
    __tablename__ = "sessions"
    # Only a hash of the token is stored: a leaked table does not hand out live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # the absolute end: created_at + SESSION_TTL_SECONDS
    session_id: Mapped[str | None] = mapped_column(String(32))  # public: named in the user context
    role: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)


class LoginProof(Base):
    """A login proof a session was opened with, kept until it has expired: it opens no other."""

    __tablename__ = "login_proofs"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def body_text(request: Request, limit: int = 2048) -> str:
    return (await request.body())[:limit].decode("utf-8", "replace").strip()


PRUNE_EVERY_SECONDS = 60


class Pruning:
    """Expired sessions are cleared now and then, by one thread at a time, in a transaction of its own: a login
    never waits on (or, on MariaDB, deadlocks with) the clearing, and a failed clearing is tried at the next turn."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = -math.inf

    def maybe(self, work: Callable[[], None]) -> None:
        if time.monotonic() - self.last < PRUNE_EVERY_SECONDS or not self.lock.acquire(blocking=False):
            return
        try:
            work()
            self.last = time.monotonic()
        except SQLAlchemyError as exc:
            log.warning(
                "could not clear expired sessions (tried again at the next login): %s", str(exc).splitlines()[0]
            )
        finally:
            self.lock.release()


def prune(database: Database, now: datetime, idle: timedelta) -> None:
    with database.sessions.begin() as session:
        session.execute(delete(Session).where(Session.expires_at <= now))
        session.execute(delete(Session).where(Session.last_seen_at <= now - idle))
        session.execute(delete(LoginProof).where(LoginProof.expires_at <= now))


@dataclass(frozen=True)
class Lifetimes:
    """How long a session lives: at most `absolute` after the login, and `idle` after its last use."""

    absolute: timedelta
    idle: timedelta

    @property
    def touch(self) -> timedelta:
        """A look-up writes the session's last use only when it is older than this: not at every request."""
        return min(timedelta(seconds=60), self.idle / 10)

    @classmethod
    def from_environment(cls) -> Lifetimes:
        absolute = env_int("SESSION_TTL_SECONDS", ABSOLUTE_SECONDS)
        idle = env_int("SESSION_IDLE_SECONDS", IDLE_SECONDS)
        if absolute < 1 or idle < 1:
            raise ConfigError("SESSION_TTL_SECONDS and SESSION_IDLE_SECONDS must be at least 1 (seconds)")
        return cls(timedelta(seconds=absolute), timedelta(seconds=min(idle, absolute)))


@dataclass(frozen=True)
class Found:
    """A live session's user, as the lookup answers it; `token`: the session's new token when it was rotated."""

    caller_id: int
    role: str
    session_id: str
    email: str
    token: str = ""


def seed(database: Database, users: tuple[SeedUser, ...] | None) -> dict[int, str] | None:
    """The seeded users' roles (None without SEED_USERS: every proven user, role unknown); every session of a
    user no longer seeded ends here, at start-up (`k8sdeploy user remove` replaces this pod)."""
    if users is None:
        return None
    with database.sessions.begin() as session:
        ended = session.execute(delete(Session).where(Session.caller_id.not_in([u.id for u in users]))).rowcount
    if ended:
        log.info("ended %d sessions of users no longer seeded", ended)
    return {user.id: user.role for user in users}


@dataclass(frozen=True)
class Sessions:
    """What session's routes share (build makes it): the sessions' database, the keys, the lifetimes, the seeded
    users' roles (None: every proven user, role unknown), the clock, and the pruning of expired sessions."""

    database: Database
    keyring: Keyring
    lifetimes: Lifetimes
    roles: dict[int, str] | None
    clock: Clock
    pruned: Pruning = field(default_factory=Pruning)

    def now(self) -> datetime:
        return self.clock().replace(microsecond=0)  # MariaDB's DATETIME keeps whole seconds

    def role_of(self, user_id: int) -> str | None:
        """The user's role now; None when the user is not (or no longer) seeded."""
        return "" if self.roles is None else self.roles.get(user_id)

    def open_session(self, proof: Caller) -> str | None:
        """A new session for the proof's user, None when the proof opened one before (a replay)."""
        user_id, at = int(proof.subject), self.now()
        role = self.role_of(user_id)
        if role is None:
            return None
        token = secrets.token_urlsafe(TOKEN_BYTES)
        try:
            with self.database.sessions.begin() as session:
                session.add(LoginProof(jti=proof.token_id, expires_at=at + timedelta(seconds=MAX_TOKEN_SECONDS)))
                session.add(
                    Session(
                        token_hash=token_hash(token),
                        caller_id=user_id,
                        expires_at=at + self.lifetimes.absolute,
                        session_id=secrets.token_hex(16),
                        role=role,
                        email=proof.email,
                        created_at=at,
                        last_seen_at=at,
                    )
                )
        except IntegrityError:
            return None  # that proof's jti is taken: it opened a session already
        self.pruned.maybe(lambda: prune(self.database, at, self.lifetimes.idle))
        return token

    def user_of(self, token: str) -> Found | None:
        """The session's user, if it lives: within both lifetimes, of a user still seeded; rotated (a new token
        and session id, the old token ending) when the user's role changed since it was last looked at."""
        at = self.now()
        with self.database.sessions.begin() as session:
            found = session.scalar(
                select(Session).where(
                    Session.token_hash == token_hash(token),
                    Session.expires_at > at,
                    Session.last_seen_at > at - self.lifetimes.idle,
                    Session.session_id.is_not(None),
                )
            )
            if found is None:
                return None
            role = self.role_of(found.caller_id)
            if role is None:  # removed while this process ran on (seeded by another replica)
                session.execute(delete(Session).where(Session.caller_id == found.caller_id))
                return None
            rotated = ""
            if role != found.role:  # a privilege change: a new session id (OWASP Session Management)
                renewed = rotate(session, found, role, at)
                if renewed is None:
                    return None  # another request rotated it first: this token has ended
                rotated, found = renewed, session.get(Session, token_hash(renewed))
            elif found.last_seen_at is not None and at - found.last_seen_at >= self.lifetimes.touch:
                session.execute(update(Session).where(Session.token_hash == found.token_hash).values(last_seen_at=at))
        assert found is not None and found.session_id is not None
        return Found(found.caller_id, role, found.session_id, found.email or "", rotated)

    def end_session(self, token: str) -> None:
        with self.database.sessions.begin() as session:
            session.execute(delete(Session).where(Session.token_hash == token_hash(token)))


def rotate(session: orm.Session, found: Session, role: str, at: datetime) -> str | None:
    """`found` under a new token and session id, for its user's new `role`: the new token, None when another
    request rotated it first."""
    rotated = secrets.token_urlsafe(TOKEN_BYTES)
    changed = session.execute(
        update(Session)
        .where(Session.token_hash == found.token_hash)
        .values(token_hash=token_hash(rotated), session_id=secrets.token_hex(16), role=role, last_seen_at=at)
    ).rowcount
    if not changed:
        return None
    log.info("rotated a session of user %d: its role is now %s", found.caller_id, role)
    return rotated


State = Annotated[Sessions, Depends(shared)]
# The bodies are read in the event loop, the database is used in the thread pool (as FastAPI runs a plain `def`
# endpoint), so a slow database never stalls the other requests.
router = APIRouter()


@router.post("/api/sessions", response_class=PlainTextResponse)
async def create(request: Request, sessions: State):  # noqa: ANN201
    """The body is authentication's proof that a user logged in (its token for session, naming the user); each
    proof opens one session."""
    try:
        proof = sessions.keyring.verify(await body_text(request), ("authentication",))
    except Unverified as exc:
        log.warning("refused to open a session for %s: %s", caller(request).issuer, exc)
        return PlainTextResponse("the body must be authentication's proof of a login", status_code=401)
    if not proof.subject.isdigit() or len(proof.subject) > 18 or not proof.token_id:
        return PlainTextResponse("the proof names no user id or has no id of its own", status_code=400)
    token = await run_in_threadpool(sessions.open_session, proof)
    if token is None:
        log.warning("refused to open a session for user %s: proof already used, or user not seeded", proof.subject)
        return PlainTextResponse("that proof opens no session", status_code=401)
    return PlainTextResponse(token)


@router.post("/api/sessions/lookup", response_class=PlainTextResponse)
async def lookup(request: Request, sessions: State):  # noqa: ANN201
    """The body is a session token; the answer three lines: its user's id, the user contexts for the parts
    (services/common/context.py), and the session's new token when it was rotated (else empty)."""
    found = await run_in_threadpool(sessions.user_of, await body_text(request))
    if found is None:
        return PlainTextResponse("unknown or expired session", status_code=404)
    contexts = context.issue(sessions.keyring, str(found.caller_id), found.role, found.session_id, found.email)
    return PlainTextResponse(f"{found.caller_id}\n{contexts}\n{found.token}")


@router.post("/api/sessions/revoke", status_code=204)
async def revoke(request: Request, sessions: State) -> Response:
    """The body is a session token, which no longer names anyone."""
    await run_in_threadpool(sessions.end_session, await body_text(request))
    return Response(status_code=204)


def build(config: ServiceConfig, database: Database, keyring: Keyring | None = None, clock: Clock = utcnow) -> FastAPI:
    """`clock` gives the current UTC time (naive); tests pass their own to pass the idle and absolute ends."""
    lifetimes = Lifetimes.from_environment()
    keyring = keyring or from_environment(config.name)
    roles = seed(database, seed_users(credentials=False))
    app = create_app(config, keyring, ("nginx-lua",), database.readiness)
    app.state.shared = Sessions(database, keyring, lifetimes, roles, clock)
    app.include_router(router)
    return app
