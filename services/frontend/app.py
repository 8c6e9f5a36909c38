"""The web pages: login form, index, the people list and its add, view and edit forms, 401 and 404. Served to the
gateway only, whose token names the logged-in user (empty on public pages); the person service is called with
frontend's own token for that user (services/common/identity.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.convertors import Convertor, register_url_convertor

from services.common.app import caller, create_app
from services.common.config import ServiceConfig
from services.common.identity import Keyring, from_environment

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


class PersonApi:
    """The person service, called with frontend's token for the user the gateway's token named."""

    def __init__(self, base_url: str, client: httpx.Client, keyring: Keyring):
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.keyring = keyring

    def call(self, method: str, path: str, caller_id: str, json: dict | None = None) -> httpx.Response:
        token = self.keyring.sign("person", caller_id)
        return self.client.request(
            method, f"{self.base_url}/api/persons{path}", headers={"Authorization": f"Bearer {token}"}, json=json
        )


class PersonIdConvertor(Convertor):
    """A person id in a path: 1 to 19 digits (the person service's ids end at 2**63-1). Longer digit strings
    match no route (the 404 page) instead of reaching int(), which refuses numbers of over 4300 digits."""

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("person_id", PersonIdConvertor())


def build(config: ServiceConfig, client: httpx.Client | None = None, keyring: Keyring | None = None) -> FastAPI:
    keyring = keyring or from_environment(config.name)
    api = PersonApi(os.environ.get("PERSON_URL", "http://127.0.0.1:8085"), client or httpx.Client(timeout=5.0), keyring)
    templates = Jinja2Templates(directory=HERE / "templates")
    app = create_app(config, keyring, ("nginx-lua",))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"caller": caller(request).subject, **context}, status_code=status
        )

    def person_call(request: Request, method: str, path: str = "", json: dict | None = None):  # noqa: ANN202
        """The person service's answer, or a page explaining why there is none."""
        user = caller(request).subject
        if not user:
            return None, page(request, "401.html", 401)
        try:
            answer = api.call(method, path, user, json)
        except httpx.HTTPError as exc:
            log.error("person service unreachable: %s", exc)
            return None, page(
                request,
                "message.html",
                503,
                title="Service unavailable",
                message="The person service cannot be reached. Try again shortly.",
            )
        if answer.status_code == 401:
            return None, page(request, "401.html", 401)
        if answer.status_code == 403:
            return None, page(
                request, "message.html", 403, title="Not allowed", message="You do not have permission to do that."
            )
        if answer.status_code == 404:
            return None, page(request, "404.html", 404)
        if answer.status_code >= 500:
            return None, page(
                request,
                "message.html",
                502,
                title="Service error",
                message=f"The person service failed ({service_error(answer)}). Try again shortly.",
            )
        return answer, None

    def service_error(answer: httpx.Response) -> str:
        """The person service's own error text: it names a failing authorisation service."""
        try:
            return str(answer.json().get("error", answer.status_code))
        except ValueError:
            return str(answer.status_code)

    def form_errors(answer: httpx.Response) -> list[str]:
        details = answer.json().get("detail", [])
        return [f"{'/'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in details]

    @app.get("/login", response_class=HTMLResponse)
    def login(request: Request, error: str = "") -> HTMLResponse:
        if error == "locked":  # the authentication service's per-account limit (the gateway answers 429)
            return page(
                request, "login.html", 429, error="Too many failed logins for this address. Try again in a few minutes."
            )
        if error == "busy":  # every hash slot of the authentication service taken (the gateway answers 503)
            return page(request, "login.html", 503, error="The login service is busy. Try again in a few seconds.")
        message = "Wrong email address or password." if error else ""
        return page(request, "login.html", 401 if error else 200, error=message)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return page(request, "index.html")

    @app.get("/401", response_class=HTMLResponse)
    def unauthorised(request: Request) -> HTMLResponse:
        return page(request, "401.html", 401)

    @app.get("/404", response_class=HTMLResponse)
    def not_found(request: Request) -> HTMLResponse:
        return page(request, "404.html", 404)

    @app.get("/persons", response_class=HTMLResponse)
    def persons(request: Request) -> Response:
        answer, failure = person_call(request, "GET")
        return failure or page(request, "persons.html", persons=answer.json())

    @app.get("/persons/add", response_class=HTMLResponse)
    def add_form(request: Request) -> Response:
        return page(request, "person_form.html", person={}, action="/persons/add", title="Add person")

    @app.post("/persons/add")
    def add(request: Request, firstName: str = Form(""), lastName: str = Form(""), email: str = Form("")) -> Response:
        fields = {"firstName": firstName, "lastName": lastName, "email": email}
        answer, failure = person_call(request, "POST", json=fields)
        if failure:
            return failure
        if answer.status_code == 422:
            return page(
                request,
                "person_form.html",
                422,
                person=fields,
                errors=form_errors(answer),
                action="/persons/add",
                title="Add person",
            )
        return RedirectResponse(f"/persons/{answer.json()['id']}", status_code=303)

    @app.get("/persons/{person_id:person_id}", response_class=HTMLResponse)
    def view(request: Request, person_id: int) -> Response:
        answer, failure = person_call(request, "GET", f"/{person_id}")
        return failure or page(request, "person.html", person=answer.json())

    @app.get("/persons/{person_id:person_id}/edit", response_class=HTMLResponse)
    def edit_form(request: Request, person_id: int) -> Response:
        answer, failure = person_call(request, "GET", f"/{person_id}")
        return failure or page(
            request, "person_form.html", person=answer.json(), action=f"/persons/{person_id}/edit", title="Edit person"
        )

    @app.post("/persons/{person_id:person_id}/edit")
    def edit(
        request: Request,
        person_id: int,
        firstName: str = Form(""),
        lastName: str = Form(""),
        email: str = Form(""),
    ) -> Response:
        fields = {"firstName": firstName, "lastName": lastName, "email": email}
        answer, failure = person_call(request, "PUT", f"/{person_id}", json=fields)
        if failure:
            return failure
        if answer.status_code == 422:
            return page(
                request,
                "person_form.html",
                422,
                person={**fields, "id": person_id},
                errors=form_errors(answer),
                action=f"/persons/{person_id}/edit",
                title="Edit person",
            )
        return RedirectResponse(f"/persons/{person_id}", status_code=303)

    @app.post("/persons/{person_id:person_id}/delete")
    def delete(request: Request, person_id: int) -> Response:
        _answer, failure = person_call(request, "DELETE", f"/{person_id}")
        return failure or RedirectResponse("/persons", status_code=303)

    @app.exception_handler(404)
    def missing(request: Request, _exc: Exception) -> HTMLResponse:
        return page(request, "404.html", 404)

    return app
