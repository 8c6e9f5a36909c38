"""The person API, for the frontend: JSON CRUD on /api/persons for the user its token names, each action allowed
by the authorisation service (asked with person's own token for the same user)."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import caller, create_app
from services.common.config import ServiceConfig
from services.common.db import Database
from services.common.identity import Keyring, from_environment

log = logging.getLogger(__name__)

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
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message


def build(
    config: ServiceConfig, database: Database, client: httpx.Client | None = None, keyring: Keyring | None = None
) -> FastAPI:
    authorisation_url = os.environ.get("AUTHORISATION_URL", "http://127.0.0.1:8083").rstrip("/")
    client = client or httpx.Client(timeout=5.0)
    keyring = keyring or from_environment(config.name)
    app = create_app(config, keyring, ("frontend",), database.readiness)

    @app.exception_handler(Denied)
    def denied(_request: Request, exc: Denied) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    def require(permission: str):  # noqa: ANN202 - FastAPI dependency factory
        def check(request: Request) -> int:
            caller_id = caller(request).subject
            if not caller_id.isdigit() or len(caller_id) > 18:
                raise Denied(401, "the token names no user")
            try:
                answer = client.get(
                    f"{authorisation_url}/api/authorisations/{permission}",
                    headers={"Authorization": f"Bearer {keyring.sign('authorisation', caller_id)}"},
                )
            except httpx.HTTPError as exc:
                log.error("authorisation service unreachable: %s", exc)
                raise Denied(503, "authorisation service unavailable") from exc
            if answer.status_code == 404:
                raise Denied(403, f"caller {caller_id} lacks permission {permission}")
            if answer.status_code != 200:
                raise Denied(503, f"authorisation service answered {answer.status_code}")
            return int(caller_id)

        return Depends(check)

    def get_or_404(session, person_id: int) -> Person:  # noqa: ANN001 - SQLAlchemy Session
        person = session.get(Person, person_id)
        if person is None:
            raise HTTPException(404, f"no person with id {person_id}")
        return person

    @app.get("/api/persons", dependencies=[require("personView")])
    def list_persons() -> list[dict]:
        with database.sessions() as session:
            return [as_json(p) for p in session.scalars(select(Person).order_by(Person.id))]

    @app.get("/api/persons/{person_id}", dependencies=[require("personView")])
    def get_person(person_id: PersonId) -> dict:
        with database.sessions() as session:
            return as_json(get_or_404(session, person_id))

    @app.post("/api/persons", status_code=201, dependencies=[require("personAdd")])
    def add_person(body: PersonIn) -> dict:
        with database.sessions.begin() as session:
            person = Person(first_name=body.firstName, last_name=body.lastName, email=body.email)
            session.add(person)
            session.flush()
            return as_json(person)

    @app.put("/api/persons/{person_id}", dependencies=[require("personEdit")])
    def edit_person(person_id: PersonId, body: PersonIn) -> dict:
        with database.sessions.begin() as session:
            person = get_or_404(session, person_id)
            person.first_name, person.last_name, person.email = body.firstName, body.lastName, body.email
            return as_json(person)

    @app.delete("/api/persons/{person_id}", status_code=204, dependencies=[require("personDelete")])
    def delete_person(person_id: PersonId) -> Response:
        with database.sessions.begin() as session:
            session.delete(get_or_404(session, person_id))
        return Response(status_code=204)

    return app
