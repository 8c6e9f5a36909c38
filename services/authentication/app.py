"""The authentication API: `POST /api/authentication` with form fields emailaddress and password."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Form
from fastapi.responses import PlainTextResponse
from sqlalchemy import DateTime, Integer, String, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import create_app
from services.common.config import ServiceConfig, env_int
from services.common.db import Database
from services.common.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from services.common.seed import SeedUser, seed_users

log = logging.getLogger(__name__)

# After this many failed logins for one email address within the window, that address is refused
# (429) until the window ends, whatever the password: guessing spread over many clients is slowed too.
MAX_FAILED_LOGINS = 5
FAILURE_WINDOW_SECONDS = 15 * 60
LOCKED_MESSAGE = "too many failed logins for this account"

Clock = Callable[[], datetime]


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))


class LoginFailure(Base):
    __tablename__ = "login_failures"
    # A hash of the address as typed: bounded in length, and the table does not collect what people
    # type into the email field (sometimes a password).
    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[datetime] = mapped_column(DateTime)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def email_hash(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8")).hexdigest()


def seed(database: Database, users: tuple[SeedUser, ...]) -> None:
    """Each seeded user exists with its address and password (a stored hash is kept while it still matches:
    a restart re-hashes nothing)."""
    with database.sessions.begin() as session:
        for wanted in users:
            user = session.get(User, wanted.id)
            if user is None:
                session.add(User(id=wanted.id, email=wanted.email, password_hash=hash_password(wanted.password)))
                log.info("seeded user %d", wanted.id)
            elif user.email != wanted.email or not verify_password(wanted.password, user.password_hash):
                user.email, user.password_hash = wanted.email, hash_password(wanted.password)
                log.info("updated seeded user %d", wanted.id)


def build(config: ServiceConfig, database: Database, clock: Clock = utcnow) -> FastAPI:
    """`clock` gives the current UTC time (naive); tests pass their own to move past the window."""
    seed(database, seed_users())
    limit = env_int("LOGIN_FAILURE_LIMIT", MAX_FAILED_LOGINS)
    window = timedelta(seconds=env_int("LOGIN_FAILURE_WINDOW_SECONDS", FAILURE_WINDOW_SECONDS))
    app = create_app(config, database.readiness)

    def now() -> datetime:
        return clock().replace(microsecond=0)  # MariaDB's DATETIME keeps whole seconds

    def locked_for(failure: LoginFailure | None, at: datetime) -> int:
        """Seconds until the address may try again; 0 when it may now."""
        if failure is None or failure.failures < limit or at >= failure.first_failure_at + window:
            return 0
        return max(1, math.ceil((failure.first_failure_at + window - at).total_seconds()))

    def record_failure(key: str, at: datetime) -> None:
        """Count one failure in the window that is open, or open one. Atomic UPDATEs, since replicas share
        the table; two replicas inserting the first failure at once is retried as an update."""
        for attempt in range(2):
            try:
                with database.sessions.begin() as session:
                    counted = session.execute(
                        update(LoginFailure)
                        .where(LoginFailure.email_hash == key, LoginFailure.first_failure_at > at - window)
                        .values(failures=LoginFailure.failures + 1)
                    ).rowcount
                    if counted:
                        return
                    restarted = session.execute(
                        update(LoginFailure)
                        .where(LoginFailure.email_hash == key)
                        .values(failures=1, first_failure_at=at)
                    ).rowcount
                    if not restarted:
                        session.add(LoginFailure(email_hash=key, failures=1, first_failure_at=at))
                return
            except IntegrityError:
                if attempt:
                    raise

    def rehash(user: User, password: str) -> None:
        """Store the password hashed with today's parameters; the login succeeds even if this fails."""
        try:
            with database.sessions.begin() as session:
                session.execute(
                    update(User)
                    .where(User.id == user.id, User.password_hash == user.password_hash)
                    .values(password_hash=hash_password(password))
                )
        except SQLAlchemyError as exc:
            log.warning(
                "could not store user %d's password with new hash parameters: %s", user.id, str(exc).splitlines()[0]
            )
        else:
            log.info("stored user %d's password with new hash parameters", user.id)

    @app.post("/api/authentication", response_class=PlainTextResponse)
    def authenticate(emailaddress: str = Form(""), password: str = Form("")):  # noqa: ANN202
        email = emailaddress.strip().lower()
        if not email:
            verify_password(password, DUMMY_HASH)
            return PlainTextResponse("invalid email address or password", status_code=401)
        key, at = email_hash(email), now()
        with database.sessions() as session:
            wait = locked_for(session.get(LoginFailure, key), at)
            user = session.scalar(select(User).where(func.lower(User.email) == email)) if not wait else None
        if wait:
            return PlainTextResponse(LOCKED_MESSAGE, status_code=429, headers={"Retry-After": str(wait)})
        stored = user.password_hash if user else DUMMY_HASH
        if verify_password(password, stored) and user is not None:
            with database.sessions.begin() as session:
                session.execute(delete(LoginFailure).where(LoginFailure.email_hash == key))
            if needs_rehash(stored):
                rehash(user, password)
            return PlainTextResponse(str(user.id))
        record_failure(key, at)
        return PlainTextResponse("invalid email address or password", status_code=401)

    return app
