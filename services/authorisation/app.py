"""The authorisation API: `GET /api/authorisations/{permission}` with header callerId → 200 or 404."""

from __future__ import annotations

from fastapi import FastAPI, Header
from fastapi.responses import PlainTextResponse
from sqlalchemy import Column, ForeignKey, Integer, String, Table, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import create_app
from services.common.config import ServiceConfig
from services.common.db import Database
from services.common.seed import SeedUser, seed_users


class Base(DeclarativeBase):
    pass


role_permissions = Table(
    "role_permissions",
    Base.metadata,
    Column("role_id", ForeignKey("roles.id"), primary_key=True),
    Column("permission_id", ForeignKey("permissions.id"), primary_key=True),
)


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class Permission(Base):
    __tablename__ = "permissions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class CallerRole(Base):
    __tablename__ = "caller_roles"
    caller_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"), primary_key=True)


def seed(database: Database, users: tuple[SeedUser, ...]) -> None:
    """Each seeded caller has exactly its role (a restart with the same users writes nothing)."""
    with database.sessions.begin() as session:
        roles = {role.name: role.id for role in session.scalars(select(Role))}
        for user in users:
            held = set(session.scalars(select(CallerRole.role_id).where(CallerRole.caller_id == user.id)))
            if held != {roles[user.role]}:
                session.execute(delete(CallerRole).where(CallerRole.caller_id == user.id))
                session.add(CallerRole(caller_id=user.id, role_id=roles[user.role]))


def build(config: ServiceConfig, database: Database) -> FastAPI:
    seed(database, seed_users())
    app = create_app(config, database.readiness)

    @app.get("/api/authorisations/{permission}", response_class=PlainTextResponse)
    def check(permission: str, caller_id: str = Header("", alias="callerId")):  # noqa: ANN202
        if not caller_id.isdigit() or len(caller_id) > 18:
            return PlainTextResponse("not allowed", status_code=404)
        query = (
            select(Permission.id)
            .join(role_permissions, role_permissions.c.permission_id == Permission.id)
            .join(CallerRole, CallerRole.role_id == role_permissions.c.role_id)
            .where(CallerRole.caller_id == int(caller_id), Permission.name == permission)
            .limit(1)
        )
        with database.sessions() as session:
            allowed = session.scalar(query) is not None
        if allowed:
            return PlainTextResponse("allowed")
        return PlainTextResponse("not allowed", status_code=404)

    return app
