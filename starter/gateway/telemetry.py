"""What the gateway tells operators: its metrics with the ledger's and the SDK client's on an
internal listener, a span per request, a WARNING per refused event.

`/metrics` is served on the internal listener (`CONTRACTING_GATEWAY_METRICS_PORT`), not on the
public port: that port faces the platform (and whoever reaches it), while the metrics give
away business volumes (payouts due, blocked, missions by stage) and each scrape of them costs
database queries; the internal port is reachable only from the private network Prometheus
scrapes in, and the compose file does not publish it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from opentelemetry.trace import SpanKind, Tracer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from observability.business import LedgerMetrics
from observability.gateway_metrics import GatewayMetrics
from observability.internal_server import Answer, InternalServer, Route, probe_routes
from observability.probes import Readiness

log = logging.getLogger("contracting.gateway")

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class GatewayTelemetry:
    """One gateway's metrics registry (its own and the ledger's figures), the address of its
    Temporal client's SDK metrics, and its tracer (None: no tracing)."""

    def __init__(
        self,
        *,
        metrics: GatewayMetrics | None = None,
        tracer: Tracer | None = None,
        sdk_metrics_url: str | None = None,
    ) -> None:
        self.metrics = metrics or GatewayMetrics()
        self.tracer = tracer
        self.sdk_metrics_url = sdk_metrics_url
        self.ledger: LedgerMetrics | None = None

    def watch_ledger(self, ledger: LedgerMetrics) -> None:
        """Report the ledger's business figures too."""
        self.ledger = ledger
        self.metrics.registry.register(ledger)

    async def exposition(self) -> bytes:
        """Every metric in Prometheus' text format: the gateway's, the ledger's (refreshed if
        stale), then the SDK's for the gateway's Temporal client (`temporal_*`)."""
        if self.ledger is not None:
            await self.ledger.refresh()
        text = generate_latest(self.metrics.registry)
        if self.sdk_metrics_url is not None:
            text += await _sdk_metrics(self.sdk_metrics_url)
        return text

    def internal_server(
        self, host: str, port: int, ready: Callable[[], Awaitable[Readiness]] | None = None
    ) -> InternalServer:
        """The internal listener: `/metrics`, and `/health` and `/ready` (given `ready`) as
        on the public port."""

        async def metrics() -> Answer:
            return Answer(200, await self.exposition(), CONTENT_TYPE_LATEST)

        routes: dict[str, Route] = {"/metrics": metrics}
        if ready is not None:
            routes.update(probe_routes(ready))
        return InternalServer(routes, host, port)


async def _sdk_metrics(url: str) -> bytes:
    """The SDK runtime's exposition (served on a loopback port only this process knows);
    nothing if it cannot be read: the gateway's own metrics still answer."""
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            response = await http.get(url)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("could not read the Temporal SDK's metrics at %s: %s", url, exc)
        return b""
    body = response.content
    return body if body.endswith(b"\n") or not body else body + b"\n"


class RequestSpans:
    """ASGI middleware: each HTTP request in a server span named by its route template
    (`POST /events`, `GET /missions/{mission_id}`), the parent of the Temporal client's spans
    (StartWorkflow, SignalWorkflow, StartWorkflowUpdate...) and, through their headers, of
    the workflow's and its activities' spans."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        with self.tracer.start_as_current_span(f"{method} request", kind=SpanKind.SERVER) as span:

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
