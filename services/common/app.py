"""The skeleton every service shares: logging, /healthz and /readyz, the proof every other request needs, and the
dependencies by which routes reach the request's caller and user and the service's own state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from . import context
from .config import ServiceConfig
from .identity import Caller, Keyring, Unverified, bearer

ReadinessCheck = Callable[[], "str | None"]


def configure_logging(config: ServiceConfig) -> None:
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s {config.name} %(levelname)s %(message)s",
        force=True,
    )
    # Alembic announces its context on every connection it inspects (each /readyz); our own
    # start-up line says what was migrated.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


PROBES = frozenset({"/healthz", "/readyz"})
log = logging.getLogger(__name__)


def create_app(
    config: ServiceConfig,
    keyring: Keyring,
    callers: tuple[str, ...],
    readiness: ReadinessCheck | None = None,
    acts_for_users: bool = False,
) -> FastAPI:
    """A FastAPI app with the probes; `readiness` returns None when ready, else the reason. Every other request
    needs a token of one of `callers` for this service (services/common/identity.py), else it is answered 401 and
    logged without its body; the verified caller is `caller(request)`. `acts_for_users`: a token naming a user
    also needs the session service's user context for this service naming the same user (services/common/
    context.py), which is then `user(request)`."""
    # redirect_slashes=False: Starlette's redirect of `/persons/` is absolute, built from the Host header or, when
    # that is not a plain name, from the service's own bind address (an internal address, passed out by the gateway)
    app = FastAPI(title=config.name, docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A 422 that says which field is wrong and how (`loc`, `msg`, `type`, as FastAPI's own), never what was
        sent: FastAPI's own adds each error's `input` (and `ctx`), the request's values echoed back."""
        problems = [{key: error[key] for key in ("loc", "msg", "type") if key in error} for error in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.middleware("http")
    async def require_proof(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette middleware
        if request.url.path in PROBES:
            return await call_next(request)
        try:
            request.state.caller = keyring.verify(bearer(request.headers.get("authorization", "")), callers)
            request.state.user = None
            if acts_for_users and request.state.caller.subject:
                header = request.headers.get(context.HEADER, "")
                request.state.user = context.verify(keyring, header, request.state.caller)
        except Unverified as exc:
            peer = request.client.host if request.client else "?"
            log.warning("refused %s %s from %s: %s", request.method, request.url.path, peer, exc)
            return PlainTextResponse("a valid internal token is required", status_code=401)
        return await call_next(request)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/readyz")
    def readyz():  # noqa: ANN202 - FastAPI response
        reason = readiness() if readiness else None
        if reason:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"ready": True})

    return app


def caller(request: Request) -> Caller:
    """The verified caller of a request that passed create_app's check."""
    return request.state.caller


def user(request: Request) -> Caller | None:
    """The verified user context of a request for a user (create_app's `acts_for_users`); None for nobody."""
    return request.state.user


async def shared(request: Request) -> Any:
    """The service's own state (its config, database, keys, clients and clocks), which its `build` put on the app
    as `app.state.shared`; each service types it, `Annotated[ItsState, Depends(shared)]`. Async, so reaching it
    takes no thread: FastAPI runs a plain `def` dependency in the thread pool, which an async route must not wait
    for."""
    return request.app.state.shared
