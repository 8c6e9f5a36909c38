"""The web pages: login form, index, the people list and its add, view and edit forms, 401 and 404. Served to the
gateway only, whose token names the logged-in user (empty on public pages) beside the session service's user
context for it (services/common/context.py); the person service is called with frontend's own token for that user
and the contexts for person and authorisation. The pages say who is logged in and offer only what the user may do
(the person service's Permissions header); the services refuse the rest anyway.

An error page names no part of the suite: the part that failed goes to the gateway in the Failing-Hop header,
which the gateway turns into a reference only k8sdeploy's smoke test can read."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.convertors import Convertor, register_url_convertor

from services.common import context
from services.common.app import create_app, shared, user
from services.common.config import ServiceConfig
from services.common.identity import Caller, Keyring, from_environment

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
HOP_HEADER = "Failing-Hop"  # read by the gateway only (nginx-lua/lua/gateway.lua answer)
PERMISSIONS_HEADER = "Permissions"  # the person service's: what the user may do, space-separated
RETRY_SECONDS = 5


def permissions(answer: httpx.Response) -> frozenset[str]:
    return frozenset(answer.headers.get(PERMISSIONS_HEADER, "").split())


class PersonApi:
    """The person service, called with frontend's token for the user the gateway's token named."""

    def __init__(self, base_url: str, client: httpx.Client, keyring: Keyring):
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.keyring = keyring

    def call(self, method: str, path: str, user: Caller, contexts: str, json: dict | None = None) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.keyring.sign('person', user.subject)}",
            context.HEADER: context.onward(contexts, ("person", "authorisation")),
        }
        return self.client.request(method, f"{self.base_url}/api{path}", headers=headers, json=json)


class PersonIdConvertor(Convertor):
    """A person id in a path: 1 to 19 digits (the person service's ids end at 2**63-1). Longer digit strings
    match no route (the 404 page) instead of reaching int(), which refuses numbers of over 4300 digits."""

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("person_id", PersonIdConvertor())


@dataclass(frozen=True)
class Site:
    """What frontend's routes share (build makes it): the person service and the templates of the pages."""

    api: PersonApi
    templates: Jinja2Templates

    def page(
        self, request: Request, name: str, status: int = 200, headers: dict | None = None, **values
    ) -> HTMLResponse:
        who = user(request)
        shown = {"caller": "", "email": "", "role": ""}
        if who is not None:
            shown = {"caller": who.subject, "email": who.email, "role": who.role}
        return self.templates.TemplateResponse(request, name, {**shown, **values}, status_code=status, headers=headers)

    def not_allowed(self, request: Request) -> HTMLResponse:
        message = "You do not have permission to do that."
        return self.page(request, "message.html", 403, title="Not allowed", message=message)

    def failed(self, request: Request, hop: str, status: int) -> HTMLResponse:
        """An error page that names no part: the failing one goes to the gateway (Failing-Hop)."""
        headers = {HOP_HEADER: hop, **({"Retry-After": str(RETRY_SECONDS)} if status == 503 else {})}
        message = "Something failed on our side. Try again shortly."
        return self.page(request, "message.html", status, headers, title="Service unavailable", message=message)

    def person_form(
        self, request: Request, person: dict, action: str, title: str, refused: httpx.Response | None = None
    ) -> HTMLResponse:
        """The add or edit form for `person`; shown again with the person service's reasons (its 422) when it
        `refused` what the form posted."""
        if refused is None:
            return self.page(request, "person_form.html", person=person, action=action, title=title)
        errors = form_errors(refused)
        return self.page(request, "person_form.html", 422, person=person, errors=errors, action=action, title=title)

    def person_call(self, request: Request, method: str, path: str = "", json: dict | None = None):  # noqa: ANN201
        """The person service's answer, or a page explaining why there is none."""
        who = user(request)
        if who is None:
            return None, self.page(request, "401.html", 401)
        try:
            answer = self.api.call(method, path, who, request.headers.get(context.HEADER, ""), json)
        except httpx.HTTPError as exc:
            log.error("person service unreachable: %s", exc)
            return None, self.failed(request, "person", 503)
        if answer.status_code == 401:
            return None, self.page(request, "401.html", 401)
        if answer.status_code == 403:
            return None, self.not_allowed(request)
        if answer.status_code == 404:
            return None, self.page(request, "404.html", 404)
        if answer.status_code >= 500:
            log.error("the person service answered %d: %s", answer.status_code, service_error(answer))
            return None, self.failed(request, failing_part(answer), 502)
        return answer, None


def service_error(answer: httpx.Response) -> str:
    """The person service's own error text: it names a failing authorisation service."""
    try:
        return str(answer.json().get("error", answer.status_code))
    except ValueError:
        return str(answer.status_code)


def failing_part(answer: httpx.Response) -> str:
    """The part behind the person service's failure: authorisation when it says so (its Failing-Hop)."""
    return "authorisation" if answer.headers.get(HOP_HEADER) == "authorisation" else "person"


def form_errors(answer: httpx.Response) -> list[str]:
    details = answer.json().get("detail", [])
    return [f"{'/'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in details]


State = Annotated[Site, Depends(shared)]
pages = APIRouter()  # what anyone, or the user, may look at
# Adding, editing and deleting a person: each form's page before what it posts (a wrong method on a path is
# answered 405 by the path's first route, whose methods its Allow header names).
forms = APIRouter()


@pages.get("/login", response_class=HTMLResponse)
def login(request: Request, site: State, error: str = "") -> HTMLResponse:
    # `error` comes from the gateway alone (it drops a link's): its status is the gateway's answer's too
    if error == "locked":  # too many failed logins, or too many at once, from this browser or address
        return site.page(request, "login.html", 429, error="Too many login attempts. Try again in a few minutes.")
    if error == "busy":  # every place in the login queue taken (the gateway answers 503)
        return site.page(request, "login.html", 503, error="Too many logins at once. Try again in a few seconds.")
    message = "Wrong email address or password." if error else ""
    return site.page(request, "login.html", 401 if error else 200, error=message)


@pages.get("/", response_class=HTMLResponse)
def index(request: Request, site: State) -> HTMLResponse:
    return site.page(request, "index.html")


@pages.get("/401", response_class=HTMLResponse)
def unauthorised(request: Request, site: State) -> HTMLResponse:
    return site.page(request, "401.html", 401)


@pages.get("/404", response_class=HTMLResponse)
def not_found(request: Request, site: State) -> HTMLResponse:
    return site.page(request, "404.html", 404)


@pages.get("/persons", response_class=HTMLResponse)
def persons(request: Request, site: State) -> Response:
    answer, failure = site.person_call(request, "GET", "/persons")
    return failure or site.page(request, "persons.html", persons=answer.json(), may=permissions(answer))


@pages.get("/persons/{person_id:person_id}", response_class=HTMLResponse)
def view(request: Request, person_id: int, site: State) -> Response:
    answer, failure = site.person_call(request, "GET", f"/persons/{person_id}")
    return failure or site.page(request, "person.html", person=answer.json(), may=permissions(answer))


@forms.get("/persons/add", response_class=HTMLResponse)
def add_form(request: Request, site: State) -> Response:
    answer, failure = site.person_call(request, "GET", "/permissions")
    if failure:
        return failure
    if "personAdd" not in permissions(answer):
        return site.not_allowed(request)
    return site.person_form(request, {}, "/persons/add", "Add person")


@forms.post("/persons/add")
def add(
    request: Request, site: State, firstName: str = Form(""), lastName: str = Form(""), email: str = Form("")
) -> Response:
    fields = {"firstName": firstName, "lastName": lastName, "email": email}
    answer, failure = site.person_call(request, "POST", "/persons", json=fields)
    if failure:
        return failure
    if answer.status_code == 422:
        return site.person_form(request, fields, "/persons/add", "Add person", refused=answer)
    return RedirectResponse(f"/persons/{answer.json()['id']}", status_code=303)


@forms.get("/persons/{person_id:person_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, person_id: int, site: State) -> Response:
    answer, failure = site.person_call(request, "GET", f"/persons/{person_id}")
    if failure:
        return failure
    if "personEdit" not in permissions(answer):
        return site.not_allowed(request)
    return site.person_form(request, answer.json(), f"/persons/{person_id}/edit", "Edit person")


@forms.post("/persons/{person_id:person_id}/edit")
def edit(
    request: Request,
    person_id: int,
    site: State,
    firstName: str = Form(""),
    lastName: str = Form(""),
    email: str = Form(""),
) -> Response:
    fields = {"firstName": firstName, "lastName": lastName, "email": email}
    answer, failure = site.person_call(request, "PUT", f"/persons/{person_id}", json=fields)
    if failure:
        return failure
    if answer.status_code == 422:
        person = {**fields, "id": person_id}
        return site.person_form(request, person, f"/persons/{person_id}/edit", "Edit person", refused=answer)
    return RedirectResponse(f"/persons/{person_id}", status_code=303)


@forms.post("/persons/{person_id:person_id}/delete")
def delete(request: Request, person_id: int, site: State) -> Response:
    _answer, failure = site.person_call(request, "DELETE", f"/persons/{person_id}")
    return failure or RedirectResponse("/persons", status_code=303)


def missing(request: Request, _exc: Exception) -> HTMLResponse:
    site: Site = request.app.state.shared  # an exception handler is given no dependencies
    return site.page(request, "404.html", 404)


def build(config: ServiceConfig, client: httpx.Client | None = None, keyring: Keyring | None = None) -> FastAPI:
    keyring = keyring or from_environment(config.name)
    api = PersonApi(os.environ.get("PERSON_URL", "http://127.0.0.1:8085"), client or httpx.Client(timeout=5.0), keyring)
    templates = Jinja2Templates(directory=HERE / "templates")
    app = create_app(config, keyring, ("nginx-lua",), acts_for_users=True)
    app.state.shared = Site(api, templates)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages)
    app.include_router(forms)
    app.add_exception_handler(404, missing)
    return app
