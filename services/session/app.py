"""The session API, for the gateway only: open a session (with authentication's proof of who logged in), look a
session token up, end it; sessions expire. Tokens travel in request bodies, never in a URI (nginx logs URIs)."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.concurrency import run_in_threadpool

from services.common.app import caller, create_app
from services.common.config import ServiceConfig, env_int
from services.common.db import Database
from services.common.identity import Keyring, Unverified, from_environment

log = logging.getLogger(__name__)
TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG


class Base(DeclarativeBase):
    pass


class Session(Base):
    __tablename__ = "sessions"
    # Only a hash of the token is stored: a leaked table does not hand out live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller_id: Mapped[int] = mapped_column(Integer)
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


def prune(database: Database, now: datetime) -> None:
    with database.sessions.begin() as session:
        session.execute(delete(Session).where(Session.expires_at <= now))


def build(config: ServiceConfig, database: Database, keyring: Keyring | None = None) -> FastAPI:
    ttl = timedelta(seconds=env_int("SESSION_TTL_SECONDS", 3600))
    keyring = keyring or from_environment(config.name)
    app = create_app(config, keyring, ("nginx-lua",), database.readiness)

    # The bodies are read in the event loop, the database is used in the thread pool (as FastAPI runs a plain
    # `def` endpoint), so a slow database never stalls the other requests.
    pruned = Pruning()

    def open_session(user_id: int) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        with database.sessions.begin() as session:
            session.add(Session(token_hash=token_hash(token), caller_id=user_id, expires_at=now + ttl))
        pruned.maybe(lambda: prune(database, now))
        return token

    def user_of(token: str) -> int | None:
        with database.sessions() as session:
            found = session.scalar(
                select(Session).where(Session.token_hash == token_hash(token), Session.expires_at > utcnow())
            )
        return found.caller_id if found is not None else None

    def end_session(token: str) -> None:
        with database.sessions.begin() as session:
            session.execute(delete(Session).where(Session.token_hash == token_hash(token)))

    @app.post("/api/sessions", response_class=PlainTextResponse)
    async def create(request: Request):  # noqa: ANN202
        """The body is authentication's proof that a user logged in (its token for session, naming the user)."""
        try:
            proof = keyring.verify(await body_text(request), ("authentication",))
        except Unverified as exc:
            log.warning("refused to open a session for %s: %s", caller(request).issuer, exc)
            return PlainTextResponse("the body must be authentication's proof of a login", status_code=401)
        if not proof.subject.isdigit() or len(proof.subject) > 18:
            return PlainTextResponse("the proof names no user id", status_code=400)
        return PlainTextResponse(await run_in_threadpool(open_session, int(proof.subject)))

    @app.post("/api/sessions/lookup", response_class=PlainTextResponse)
    async def lookup(request: Request):  # noqa: ANN202
        """The body is a session token; the answer its user's id."""
        user_id = await run_in_threadpool(user_of, await body_text(request))
        if user_id is None:
            return PlainTextResponse("unknown or expired session", status_code=404)
        return PlainTextResponse(str(user_id))

    @app.post("/api/sessions/revoke", status_code=204)
    async def revoke(request: Request) -> Response:
        """The body is a session token, which no longer names anyone."""
        await run_in_threadpool(end_session, await body_text(request))
        return Response(status_code=204)

    return app
