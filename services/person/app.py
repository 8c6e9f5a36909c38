"""The person API, for the frontend: JSON CRUD on /api/persons for the user its token names and the session
service's user context for person confirms (services/common/context.py), each action allowed by the authorisation
service (asked with person's own token for the same user, and the user's context for authorisation). Every answer
for a user says what that user may do (the Permissions header: the pages offer only that); `GET /api/permissions`
says it alone."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import context
from services.common.app import create_app, shared, user
from services.common.config import ServiceConfig
from services.common.db import Database
from services.common.identity import Keyring, from_environment

log = logging.getLogger(__name__)

PERMISSIONS_HEADER = "Permissions"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^([^@\s]+@[^@\s]+)?$")]

# Ids are positive and fit a signed 64-bit integer (SQLite's INTEGER; MariaDB's INT column is smaller
# and simply finds nothing): any other whole number names no person, and must not reach the driver.
MAX_ID = 2**63 - 1


def known_id(person_id: int) -> int:
    """The path's id if a person could have it, else 404 without asking the database."""
    if not 1 <= person_id <= MAX_ID:
        # Python refuses to print a whole number of more than 4300 digits; such an id is not echoed.
        too_long = person_id.bit_length() > 256
        raise HTTPException(404, "no person with an id that long" if too_long else f"no person with id {person_id}")
    return person_id


PersonId = Annotated[int, Depends(known_id)]


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), default="")


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    firstName: Name
    lastName: Name
    email: Email = ""


class PersonOut(PersonIn):
    id: int = Field(ge=1)


def as_json(person: Person) -> dict:
    return PersonOut(
        id=person.id, firstName=person.first_name, lastName=person.last_name, email=person.email
    ).model_dump()


class Denied(Exception):
    def __init__(self, status: int, message: str, hop: str = ""):
        self.status = status
        self.message = message
        self.hop = hop  # the part that failed, for the gateway only (services/frontend/app.py HOP_HEADER)


@dataclass(frozen=True)
class Persons:
    """What person's routes share (build makes it): the database, and how to ask the authorisation service."""

    database: Database
    keyring: Keyring
    client: httpx.Client
    authorisation_url: str

    def held(self, request: Request) -> frozenset[str]:
        """The permissions of the request's user, as the authorisation service says."""
        who = user(request)
        if who is None or not who.subject.isdigit() or len(who.subject) > 18:
            raise Denied(401, "the token names no user")
        headers = {
            "Authorization": f"Bearer {self.keyring.sign('authorisation', who.subject)}",
            context.HEADER: context.onward(request.headers.get(context.HEADER, ""), ("authorisation",)),
        }
        try:
            answer = self.client.get(f"{self.authorisation_url}/api/authorisations", headers=headers)
        except httpx.HTTPError as exc:
            log.error("authorisation service unreachable: %s", exc)
            raise Denied(503, "a service this one needs is unavailable", hop="authorisation") from exc
        if answer.status_code != 200:
            log.error("the authorisation service answered %d", answer.status_code)
            raise Denied(503, "a service this one needs is unavailable", hop="authorisation")
        return frozenset(answer.text.split())


State = Annotated[Persons, Depends(shared)]
router = APIRouter()


def denied(_request: Request, exc: Denied) -> JSONResponse:
    headers = {"Failing-Hop": exc.hop, "Retry-After": "5"} if exc.hop else None
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def require(permission: str):  # noqa: ANN201 - FastAPI dependency factory
    def check(request: Request, response: Response, persons: State) -> int:
        permissions = persons.held(request)
        if permission not in permissions:
            raise Denied(403, f"no permission {permission}")
        response.headers[PERMISSIONS_HEADER] = " ".join(sorted(permissions))
        return int(user(request).subject)  # type: ignore[union-attr]  # held() checked it

    return Depends(check)


def get_or_404(session, person_id: int) -> Person:  # noqa: ANN001 - SQLAlchemy Session
    person = session.get(Person, person_id)
    if person is None:
        raise HTTPException(404, f"no person with id {person_id}")
    return person


@router.get("/api/permissions")
def permissions(request: Request, response: Response, persons: State) -> list[str]:
    found = sorted(persons.held(request))
    response.headers[PERMISSIONS_HEADER] = " ".join(found)
    return found


@router.get("/api/persons", dependencies=[require("personView")])
def list_persons(persons: State) -> list[dict]:
    with persons.database.sessions() as session:
        return [as_json(p) for p in session.scalars(select(Person).order_by(Person.id))]


@router.get("/api/persons/{person_id}", dependencies=[require("personView")])
def get_person(person_id: PersonId, persons: State) -> dict:
    with persons.database.sessions() as session:
        return as_json(get_or_404(session, person_id))


@router.post("/api/persons", status_code=201, dependencies=[require("personAdd")])
def add_person(body: PersonIn, persons: State) -> dict:
    with persons.database.sessions.begin() as session:
        person = Person(first_name=body.firstName, last_name=body.lastName, email=body.email)
        session.add(person)
        session.flush()
        return as_json(person)


@router.put("/api/persons/{person_id}", dependencies=[require("personEdit")])
def edit_person(person_id: PersonId, body: PersonIn, persons: State) -> dict:
    with persons.database.sessions.begin() as session:
        person = get_or_404(session, person_id)
        person.first_name, person.last_name, person.email = body.firstName, body.lastName, body.email
        return as_json(person)


@router.delete("/api/persons/{person_id}", status_code=204, dependencies=[require("personDelete")])
def delete_person(person_id: PersonId, persons: State) -> Response:
    with persons.database.sessions.begin() as session:
        session.delete(get_or_404(session, person_id))
    return Response(status_code=204)


def build(
    config: ServiceConfig, database: Database, client: httpx.Client | None = None, keyring: Keyring | None = None
) -> FastAPI:
    authorisation_url = os.environ.get("AUTHORISATION_URL", "http://127.0.0.1:8083").rstrip("/")
    client = client or httpx.Client(timeout=5.0)
    keyring = keyring or from_environment(config.name)
    app = create_app(config, keyring, ("frontend",), database.readiness, acts_for_users=True)
    app.state.shared = Persons(database, keyring, client, authorisation_url)
    app.add_exception_handler(Denied, denied)
    app.include_router(router)
    return app
