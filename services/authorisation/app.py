"""The authorisation API, for the person service: `GET /api/authorisations/{permission}` → 200 when the user its
token names (services/common/identity.py), confirmed by the session service's user context for authorisation
(services/common/context.py), holds that permission, else 404; `GET /api/authorisations` → the user's permissions,
one a line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import Column, ForeignKey, Integer, String, Table, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import create_app, shared, user
from services.common.config import ServiceConfig
from services.common.db import Database
from services.common.identity import Keyring, from_environment
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


def seed(database: Database, users: tuple[SeedUser, ...] | None) -> None:
    """Each seeded caller has exactly its role (a restart with the same users writes nothing), and a caller no
    longer seeded has none. None (no SEED_USERS): nothing changes."""
    if users is None:
        return
    with database.sessions.begin() as session:
        roles = {role.name: role.id for role in session.scalars(select(Role))}
        session.execute(delete(CallerRole).where(CallerRole.caller_id.not_in([user.id for user in users])))
        for user in users:
            held = set(session.scalars(select(CallerRole.role_id).where(CallerRole.caller_id == user.id)))
            if held != {roles[user.role]}:
                session.execute(delete(CallerRole).where(CallerRole.caller_id == user.id))
                session.add(CallerRole(caller_id=user.id, role_id=roles[user.role]))


@dataclass(frozen=True)
class Authorisations:
    """What authorisation's routes share (build makes it): the database of roles and their permissions."""

    database: Database

    def held(self, request: Request) -> list[str]:
        who = user(request)
        if who is None or not who.subject.isdigit() or len(who.subject) > 18:
            return []
        query = (
            select(Permission.name)
            .join(role_permissions, role_permissions.c.permission_id == Permission.id)
            .join(CallerRole, CallerRole.role_id == role_permissions.c.role_id)
            .where(CallerRole.caller_id == int(who.subject))
            .order_by(Permission.name)
        )
        with self.database.sessions() as session:
            return list(session.scalars(query))


State = Annotated[Authorisations, Depends(shared)]
router = APIRouter()


@router.get("/api/authorisations", response_class=PlainTextResponse)
def permissions(request: Request, authorisations: State) -> str:
    return "".join(f"{name}\n" for name in authorisations.held(request))


@router.get("/api/authorisations/{permission}", response_class=PlainTextResponse)
def check(permission: str, request: Request, authorisations: State):  # noqa: ANN201
    if permission in authorisations.held(request):
        return PlainTextResponse("allowed")
    return PlainTextResponse("not allowed", status_code=404)


def build(config: ServiceConfig, database: Database, keyring: Keyring | None = None) -> FastAPI:
    keyring = keyring or from_environment(config.name)
    seed(database, seed_users(credentials=False))
    app = create_app(config, keyring, ("person",), database.readiness, acts_for_users=True)
    app.state.shared = Authorisations(database)
    app.include_router(router)
    return app
