"""The session API: create a token for a caller id, look it up, delete it; tokens expire."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import create_app
from services.common.config import ServiceConfig, env_int
from services.common.db import Database

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


def build(config: ServiceConfig, database: Database) -> FastAPI:
    ttl = timedelta(seconds=env_int("SESSION_TTL_SECONDS", 3600))
    app = create_app(config, database.readiness)

    @app.post("/api/sessions", response_class=PlainTextResponse)
    async def create(request: Request):  # noqa: ANN202
        body = (await request.body()).decode("utf-8", "replace").strip()
        if not body.isdigit() or len(body) > 18:
            return PlainTextResponse("body must be the caller id, a whole number", status_code=400)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        with database.sessions.begin() as session:
            session.execute(delete(Session).where(Session.expires_at <= now))
            session.add(Session(token_hash=token_hash(token), caller_id=int(body), expires_at=now + ttl))
        return PlainTextResponse(token)

    @app.get("/api/sessions/{token}", response_class=PlainTextResponse)
    def lookup(token: str):  # noqa: ANN202
        with database.sessions() as session:
            found = session.scalar(
                select(Session).where(Session.token_hash == token_hash(token), Session.expires_at > utcnow())
            )
        if found is None:
            return PlainTextResponse("unknown or expired session", status_code=404)
        return PlainTextResponse(str(found.caller_id))

    @app.delete("/api/sessions/{token}", status_code=204)
    def revoke(token: str) -> Response:
        with database.sessions.begin() as session:
            session.execute(delete(Session).where(Session.token_hash == token_hash(token)))
        return Response(status_code=204)

    return app
