"""The authentication API: `POST /api/authentication` with form fields emailaddress and password."""

from __future__ import annotations

from fastapi import FastAPI, Form
from fastapi.responses import PlainTextResponse
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import create_app
from services.common.config import ServiceConfig
from services.common.db import Database
from services.common.passwords import DUMMY_HASH, verify_password


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))


def build(config: ServiceConfig, database: Database) -> FastAPI:
    app = create_app(config, database.readiness)

    @app.post("/api/authentication", response_class=PlainTextResponse)
    def authenticate(emailaddress: str = Form(""), password: str = Form("")):  # noqa: ANN202
        email = emailaddress.strip().lower()
        with database.sessions() as session:
            user = session.scalar(select(User).where(func.lower(User.email) == email)) if email else None
        stored = user.password_hash if user else DUMMY_HASH
        if verify_password(password, stored) and user is not None:
            return PlainTextResponse(str(user.id))
        return PlainTextResponse("invalid email address or password", status_code=401)

    return app
