"""Stopping without dropping a request: uvicorn's server, whose graceful shutdown never closes a kept-alive
connection under its client.

uvicorn's own shutdown closes every idle keep-alive connection at once. Its client (the gateway's nginx, a peer's
httpx pool) may be sending a request on one at that moment: the request meets the close, and nginx answers 502
(it retries a failed cached connection only for idempotent methods, and the gateway's session lookups are POSTs).
HTTP/1.1 leaves closing an idle connection safely to the client (RFC 9112 section 9.3.1: a server that closes one
races a request). So on SIGTERM this server stops accepting, answers every further request with `Connection:
close`, and waits, for at most DRAIN_SECONDS, for its clients to close the idle connections themselves (nginx's
upstream keepalive_timeout and httpx's keepalive_expiry are shorter than that) before uvicorn's shutdown closes
what is left. Its own idle timeout (KEEP_ALIVE_SECONDS) is longer than its clients', so that in steady state, too,
the client is the one that closes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import uvicorn
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope

log = logging.getLogger(__name__)

# Longer than any client's idle timeout: nginx's upstream keepalive_timeout (10 s, nginx.conf.j2) and httpx's
# keepalive_expiry (5 s)
KEEP_ALIVE_SECONDS = 75
CLOSE = (b"connection", b"close")


class DrainingServer(uvicorn.Server):
    """A uvicorn.Server whose shutdown lets clients close their connections (the module's docstring)."""

    draining = False

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.config.app = closing_when_draining(self.config.app, self)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.draining = True
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        drain = float(self.config.timeout_graceful_shutdown or 0)
        deadline = time.monotonic() + drain
        while self.server_state.connections and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.1)
        if self.server_state.connections:
            log.warning("%d connections still open after %.0f s of draining", len(self.server_state.connections), drain)
        await super().shutdown(sockets)


def closing_when_draining(app: Any, server: DrainingServer) -> ASGI3Application:
    """`app`, whose answers say `Connection: close` once `server` drains (uvicorn then closes the connection after
    the answer, and the client opens its next one elsewhere)."""

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def sending(message: ASGISendEvent) -> None:
            if server.draining and message["type"] == "http.response.start":
                headers = [header for header in message.get("headers", []) if header[0].lower() != CLOSE[0]]
                message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        await app(scope, receive, sending)

    return wrapped
