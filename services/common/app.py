"""The skeleton every service shares: logging, /healthz and /readyz."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from .config import ServiceConfig

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


def create_app(config: ServiceConfig, readiness: ReadinessCheck | None = None) -> FastAPI:
    """A FastAPI app with the probes; `readiness` returns None when ready, else the reason."""
    app = FastAPI(title=config.name, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/readyz")
    def readyz():  # noqa: ANN202 - FastAPI response
        reason = readiness() if readiness else None
        if reason:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True})

    return app
