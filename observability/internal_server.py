"""A tiny HTTP server for probes and scrapes on an internal port (never published): the
worker has no web framework, and the gateway's public app must not serve its metrics.

GET only, one request per connection, answers computed by async handlers in the process's
event loop (so they share its clients and connection pools). Enough for Prometheus and for
an orchestrator's probes, nothing more."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from observability.probes import Readiness

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0
MAX_HEADER_BYTES = 16 * 1024
STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[], Awaitable[Answer]]


def json_answer(status: int, body: Any) -> Answer:
    return Answer(status, json.dumps(body).encode(), "application/json")


def probe_routes(ready: Callable[[], Awaitable[Readiness]]) -> dict[str, Route]:
    """`/health` (liveness: the process answers) and `/ready` (200 or 503 with what failed)."""

    async def health() -> Answer:
        return json_answer(200, {"status": "ok"})

    async def readiness() -> Answer:
        state = await ready()
        return json_answer(state.status_code, state.body())

    return {"/health": health, "/ready": readiness}


class InternalServer:
    """Serves `routes` (path → handler) on host:port until closed."""

    def __init__(self, routes: Mapping[str, Route], host: str, port: int) -> None:
        self._routes = dict(routes)
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when asked for 0)."""
        assert self._server is not None, "the server is not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> InternalServer:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> InternalServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            answer = await self._answer(head)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            writer.close()
            return
        reason = STATUS_TEXT.get(answer.status, "")
        writer.write(
            f"HTTP/1.1 {answer.status} {reason}\r\nContent-Type: {answer.content_type}\r\n"
            f"Content-Length: {len(answer.body)}\r\nConnection: close\r\n\r\n".encode()
            + answer.body
        )
        with suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()

    async def _answer(self, head: bytes) -> Answer:
        if len(head) > MAX_HEADER_BYTES:
            return Answer(400, b"request too large\n")
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        route = self._routes.get(path)
        if route is None:
            return Answer(404, f"no such path; try {', '.join(sorted(self._routes))}\n".encode())
        if method not in ("GET", "HEAD"):
            return Answer(405, b"GET only\n")
        try:
            return await route()
        except Exception:
            log.exception("the internal endpoint %s failed", path)
            return Answer(500, b"internal error, see the log\n")
