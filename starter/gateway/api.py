"""HTTP event gateway: `POST /events` (docs/events.md), `GET /missions/{id}`,
`GET /missions/{id}/explain`, `GET /missions/{id}/documents[/{name}]`, `GET /health`
(liveness), `GET /ready` (Temporal and the database reachable), OpenAPI docs at `/docs`;
`/metrics` on an internal listener (starter.gateway.telemetry).

The route of `POST /events` reads the raw body itself (the HMAC signature is over those exact
bytes) and `starter.gateway.events.parse_event` validates it; FastAPI never parses it. Its OpenAPI
request body is therefore written here, from the same models (`event_request_body`): one
envelope per event type, a `oneOf` with a discriminator on `type`."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from activities.temporal_client import temporal_target
from observability import context
from observability.business import LedgerMetrics
from observability.logs import configure_logging
from observability.probes import Readiness, database_check, readiness, temporal_check
from observability.temporal_runtime import free_loopback_address, install_prometheus_runtime
from observability.tracing import tracing_from
from schemas.events import PAYLOADS, Envelope
from schemas.mission import MissionView
from settings import Settings, get_settings
from starter.gateway.events import (
    REQUIRED_AT_EDGE,
    EventError,
    TemporalUnavailable,
    Unavailable,
)
from starter.gateway.processor import EventProcessor, open_processor
from starter.gateway.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier
from starter.gateway.telemetry import GatewayTelemetry, RequestSpans
from starter.support.documents import (
    MissionDocuments,
    NoSuchDocument,
    NoSuchMission,
    list_documents,
    read_document,
)
from starter.support.explain import MissionExplanation, explain_mission
from starter.support.missions import MissionUnavailable, UnknownMission, mission_view

log = logging.getLogger("contracting.gateway")


class Accepted(BaseModel):
    event_id: str
    status: str = "accepted"
    workflow_id: str
    workflow_ids: list[str] | None = Field(
        default=None, description="rfp.closed: every mission notified"
    )
    skipped: dict[str, str] | None = Field(
        default=None, description="rfp.closed: missions not notified, with the reason"
    )


class Duplicate(BaseModel):
    event_id: str
    status: str = "duplicate"
    workflow_id: str | None
    first_delivery: str = Field(
        default="accepted", description="always `accepted`: an event still in flight is a 503"
    )


class Rejected(BaseModel):
    status: str = "rejected"
    detail: str
    errors: list[dict[str, Any]] = []


class Problem(BaseModel):
    detail: str


COMPONENTS = "#/components/schemas/"

ENVELOPE_ONLY = ("occurred_at",)
"""Fields a payload model may carry that the platform never sends in `data` (the gateway
copies them from the envelope; sent in `data`, they are a 422): left out of `data`'s schema."""


def event_request_body() -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI request body of `POST /events`, and the component schemas it refers to.

    One component per event type (`<Payload>Event`: the envelope with `type` fixed to that
    type and `data` its payload model of `schemas.events.PAYLOADS`), the payload models and
    their nested models; the body is a `oneOf` of the envelopes with a discriminator on
    `type`. The fields `starter.gateway.events.REQUIRED_AT_EDGE` requires are marked required,
    as the gateway answers 422 without them. Documentation only: validation is `parse_event`'s.
    """
    models = list(dict.fromkeys(PAYLOADS.values()))
    refs, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=COMPONENTS + "{model}"
    )
    components: dict[str, Any] = dict(top.get("$defs", {}))

    def component(ref: str) -> dict[str, Any]:
        schema: dict[str, Any] = components[ref.removeprefix(COMPONENTS)]
        return schema

    data_refs = {model: str(refs[(model, "validation")]["$ref"]) for model in models}
    for ref in data_refs.values():
        payload = component(ref)
        for name in ENVELOPE_ONLY:
            payload.get("properties", {}).pop(name, None)
            if name in payload.get("required", []):
                payload["required"].remove(name)
    for event_type, fields in REQUIRED_AT_EDGE.items():
        payload = component(data_refs[PAYLOADS[event_type]])
        for parent, name in fields:
            holder = component(payload["properties"][parent]["$ref"])
            optional = holder["properties"][name]
            choices = [c for c in optional.get("anyOf", [optional]) if c.get("type") != "null"]
            required: dict[str, Any] = choices[0] if len(choices) == 1 else {"anyOf": choices}
            holder["properties"][name] = {
                **required,
                "description": "required: the gateway answers 422 without it",
            }
            if name not in holder.setdefault("required", []):
                holder["required"].append(name)

    envelope = Envelope.model_json_schema()["properties"]
    mapping: dict[str, str] = {}
    for event_type, model in PAYLOADS.items():
        data_ref = data_refs[model]
        name = f"{data_ref.removeprefix(COMPONENTS)}Event"
        assert name not in components, f"component {name} is already a payload model"
        components[name] = {
            "title": f"{event_type} event",
            "type": "object",
            "properties": {
                "event_id": {
                    **envelope["event_id"],
                    "description": "unique per event, chosen by the platform: the idempotency "
                    "key (a second delivery answers 200 duplicate)",
                },
                "type": {"type": "string", "const": event_type, "title": "Type"},
                "occurred_at": {
                    **envelope["occurred_at"],
                    "description": "when the fact happened, with its zone: the business date "
                    "(read in Europe/Paris); never inside data",
                },
                "data": {"$ref": data_ref},
            },
            "required": ["event_id", "type", "occurred_at", "data"],
            "additionalProperties": False,
        }
        mapping[event_type] = COMPONENTS + name
    body = {
        "required": True,
        "description": (
            "A platform event: the envelope and the `data` of its `type` (docs/events.md). "
            "Sign the raw bytes you send: `X-Signature-Timestamp: <Unix seconds>` and "
            '`X-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.'
        ),
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"$ref": ref} for ref in mapping.values()],
                    "discriminator": {"propertyName": "type", "mapping": mapping},
                }
            }
        },
    }
    return body, components


def _with_refs(node: Any, renames: dict[str, str]) -> Any:
    """`node` with every reference of `renames` (a `$ref` or a discriminator mapping value)
    replaced."""
    if isinstance(node, dict):
        return {key: _with_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_refs(item, renames) for item in node]
    if isinstance(node, str):
        return renames.get(node, node)
    return node


def add_event_schemas(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Add the event schemas to an OpenAPI document's components. A name FastAPI already uses
    for the same schema (an enum, say) is shared; one it uses for a different schema is taken
    as `Event<name>` instead, with every reference to it in the schemas and in the request
    body of `POST /events`."""
    target: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    renames: dict[str, str] = {}
    for name, schema in schemas.items():
        if name in target and target[name] != schema:
            new = f"Event{name}"
            while new in target or new in schemas:
                new = f"Event{new}"
            renames[COMPONENTS + name] = COMPONENTS + new
    if renames:
        schemas = {
            renames.get(COMPONENTS + name, COMPONENTS + name).removeprefix(COMPONENTS): (
                _with_refs(schema, renames)
            )
            for name, schema in schemas.items()
        }
        operation = document["paths"]["/events"]["post"]
        operation["requestBody"] = _with_refs(operation["requestBody"], renames)
    for name, schema in schemas.items():
        target.setdefault(name, schema)


class BodyRefused(Exception):
    """A request body refused before it is read whole: its status (413, 400) and why."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes: refused from its `Content-Length` before reading
    anything, else while streaming as soon as it passes the limit, so that a huge or endless
    body never sits in memory (the signature can only be checked on the whole body)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]{1,20}", declared.strip()):  # ASCII: "²".isdigit() too
            raise BodyRefused(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise BodyRefused(413, _too_large(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyRefused(413, _too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return (
        f"the body is larger than {limit} bytes, the most an event may be "
        "(CONTRACTING_GATEWAY_MAX_BODY_BYTES): send one event per request"
    )


T = TypeVar("T")

WORKFLOW_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such mission."},
    503: {"model": Problem, "description": "Temporal unavailable."},
}
"""What a route that reads the workflows answers besides its model."""


def _problem(status_code: int, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=Problem(detail=str(exc)).model_dump())


async def _read_workflows(read: Awaitable[T]) -> T | JSONResponse:
    """What the workflows answer, or the problem: 404 for an unknown mission, 503 when
    Temporal cannot be reached."""
    try:
        return await read
    except UnknownMission as exc:
        return _problem(404, exc)
    except MissionUnavailable as exc:
        return _problem(503, exc)


def create_app(
    settings: Settings | None = None,
    processor: EventProcessor | None = None,
    telemetry: GatewayTelemetry | None = None,
) -> FastAPI:
    """The gateway; refuses to start without an HMAC secret outside the dev stack.

    Without `processor` it sets up logging (`CONTRACTING_LOG_FORMAT`), the SDK's metrics
    and tracing (`CONTRACTING_OTLP_ENDPOINT`), connects to Temporal and PostgreSQL and serves
    `/metrics` on its internal listener for its lifetime (tests pass their own processor,
    bound to the test servers, and their own `telemetry`, watching the ledger if they wish).
    """
    settings = settings or get_settings()
    if processor is None:
        temporal_target(settings)  # a misconfigured connection stops the gateway at start
    verifier = Verifier(
        settings.gateway_secrets(),
        tolerance_seconds=settings.gateway_signature_tolerance_seconds,
        allow_untimestamped=settings.gateway_allow_untimestamped,
    )
    tracing = None
    if telemetry is None:
        tracing = tracing_from(settings.otlp_endpoint, "contracting-gateway")
        telemetry = GatewayTelemetry(tracer=tracing.tracer if tracing else None)
    observed: GatewayTelemetry = telemetry

    async def ready() -> Readiness:
        opened: EventProcessor = app.state.processor
        return await readiness(
            {
                "temporal": temporal_check(opened.temporal, settings.readiness_timeout_seconds),
                "database": database_check(opened.sessions),
            },
            within=settings.readiness_timeout_seconds,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if processor is not None:
            yield
            return
        configure_logging(settings.log_format)
        if settings.gateway_metrics_port:
            # Before the client connects: its runtime is the one its metrics come from.
            sdk_address = free_loopback_address()
            install_prometheus_runtime(sdk_address)
            observed.sdk_metrics_url = f"http://{sdk_address}/metrics"
        interceptors = [tracing.interceptor()] if tracing else []
        async with AsyncExitStack() as stack:
            opened = await stack.enter_async_context(
                open_processor(settings, interceptors=interceptors)
            )
            app.state.processor = opened
            observed.watch_ledger(
                LedgerMetrics(opened.sessions, ttl=settings.business_metrics_ttl_seconds)
            )
            if settings.gateway_metrics_port:
                server = observed.internal_server(
                    settings.metrics_host, settings.gateway_metrics_port, ready
                )
                await stack.enter_async_context(server)
                log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
            if tracing is not None:
                stack.callback(tracing.shutdown)
            yield

    app = FastAPI(
        title="Contracting orchestrator — event gateway",
        description=(
            "The marketplace backend posts platform events here (see docs/events.md). Each body "
            "is signed: `X-Signature-Timestamp: <Unix seconds>` and `X-Signature: "
            'sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` (docs/events.md).'
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.telemetry = observed
    if observed.tracer is not None:
        app.add_middleware(RequestSpans, tracer=observed.tracer)
    if processor is not None:
        app.state.processor = processor
    request_body, event_schemas = event_request_body()
    generate_openapi = app.openapi

    def openapi_with_event_schemas() -> dict[str, Any]:
        """FastAPI's document (cached in `app.openapi_schema`), plus the event schemas."""
        if app.openapi_schema is None:
            add_event_schemas(generate_openapi(), event_schemas)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi_with_event_schemas  # type: ignore[method-assign]

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers (it checks nothing else; see `/ready`)."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        responses={503: {"description": "Temporal or the database cannot be reached."}},
    )
    async def ready_route() -> JSONResponse:
        """Readiness: Temporal answers its health check and the database `SELECT 1`, each
        within CONTRACTING_READINESS_TIMEOUT_SECONDS; 503 names the one that failed."""
        state = await ready()
        return JSONResponse(status_code=state.status_code, content=state.body())

    async def answer_event(
        request: Request, x_signature: str | None, x_signature_timestamp: str | None
    ) -> JSONResponse:
        try:
            raw = await read_limited_body(request, settings.gateway_max_body_bytes)
        except BodyRefused as exc:
            return JSONResponse(
                status_code=exc.status_code, content=Rejected(detail=exc.detail).model_dump()
            )
        problem = verifier.problem(raw, x_signature, x_signature_timestamp)
        if problem is not None:
            return JSONResponse(status_code=401, content=Rejected(detail=problem).model_dump())
        processor: EventProcessor = request.app.state.processor
        try:
            outcome = await processor.process(raw)
        except Unavailable as exc:
            if isinstance(exc, TemporalUnavailable):
                observed.metrics.temporal_failures.labels(exc.reason).inc()
            return JSONResponse(
                status_code=exc.status_code,
                content=exc.body(),
                headers={"Retry-After": str(exc.retry_after)},
            )
        except EventError as exc:
            return JSONResponse(status_code=exc.status_code, content=exc.body())
        return JSONResponse(status_code=outcome.status_code, content=outcome.body)

    @app.post(
        "/events",
        status_code=202,
        response_model=Accepted,
        responses={
            200: {"model": Duplicate, "description": "This event_id was already accepted."},
            400: {"model": Rejected, "description": "Content-Length is not a number."},
            401: {"model": Rejected, "description": "Missing or wrong signature."},
            404: {"model": Rejected, "description": "Unknown mission or proposal."},
            409: {"model": Rejected, "description": "Not applicable in the current state."},
            413: {"model": Rejected, "description": "Body over the size limit."},
            422: {"model": Rejected, "description": "Malformed envelope or payload."},
            501: {"model": Rejected, "description": "Type not handled by this version yet."},
            503: {
                "model": Rejected,
                "description": "Temporal or the database unavailable or too slow (status "
                "`rejected`), or this event_id still being dispatched by another delivery "
                "(status `in_flight`): retry with the same event_id after `Retry-After` seconds.",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait before sending the event again.",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
        openapi_extra={"requestBody": request_body},
    )
    async def post_event(
        request: Request,
        x_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
        x_signature_timestamp: Annotated[
            str | None,
            Header(alias=TIMESTAMP_HEADER, description="Unix seconds of signing, signed too"),
        ] = None,
    ) -> JSONResponse:
        """A platform event (docs/events.md). The body is read raw, its signature checked on
        those bytes, then validated: the request body described here is documentation."""
        started = time.perf_counter()
        with context.scope():
            response = await answer_event(request, x_signature, x_signature_timestamp)
            facts = context.current()
            body = json.loads(bytes(response.body))
            observed.metrics.answered(
                facts.get("event_type"),
                response.status_code,
                body.get("status"),
                time.perf_counter() - started,
            )
            if response.status_code >= 400:
                log_refusal(response.status_code, body)
        return response

    @app.get(
        "/missions/{mission_id}",
        response_model=MissionView,
        responses=WORKFLOW_READ_RESPONSES,
    )
    async def get_mission(mission_id: str, request: Request) -> MissionView | JSONResponse:
        """The mission as its workflow sees it: stage, proposal, legal verification (what
        each side still has to provide), the provider's documents, timeline."""
        processor: EventProcessor = request.app.state.processor
        return await _read_workflows(mission_view(processor.temporal, mission_id))

    @app.get(
        "/missions/{mission_id}/explain",
        response_model=MissionExplanation,
        responses=WORKFLOW_READ_RESPONSES,
    )
    async def explain_mission_route(
        mission_id: str,
        request: Request,
        month: Annotated[
            str | None,
            Query(
                pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$",
                description="YYYY-MM, a month of 2000 to 2099",
            ),
        ] = None,
    ) -> MissionExplanation | JSONResponse:
        """For support, month by month (every month so far, or `month`): why the CRA is not
        visible, why the payout has not arrived (or when it was paid), in French, with the
        facts (dates, amounts, invoice number) each reason rests on; and the mission's
        e-mails the SMTP server refused for good (`emails_refused`, from the outbox)."""
        processor: EventProcessor = request.app.state.processor
        return await _read_workflows(
            explain_mission(processor.temporal, mission_id, month, sessions=processor.sessions)
        )

    @app.get(
        "/missions/{mission_id}/documents",
        response_model=MissionDocuments,
        responses={404: {"model": Problem, "description": "No such mission."}},
    )
    async def get_documents(mission_id: str, request: Request) -> MissionDocuments | JSONResponse:
        """The mission's billing documents as issued: each validated month's BPF and its
        generated invoice (Factur-X), with kind, month, number, content type and URL."""
        processor: EventProcessor = request.app.state.processor
        try:
            return await list_documents(processor.sessions, mission_id)
        except NoSuchMission as exc:
            return _problem(404, exc)

    @app.get(
        "/missions/{mission_id}/documents/{name}",
        response_class=Response,
        responses={
            200: {"content": {"application/pdf": {}}, "description": "The file as issued."},
            404: {"model": Problem, "description": "No such mission or document."},
        },
    )
    async def get_document(mission_id: str, name: str, request: Request) -> Response:
        """One document's bytes, as issued (its `ETag` is the file's SHA-256)."""
        processor: EventProcessor = request.app.state.processor
        try:
            info, content = await read_document(processor.sessions, mission_id, name)
        except (NoSuchMission, NoSuchDocument) as exc:
            return _problem(404, exc)
        return Response(
            content=content,
            media_type=info.content_type,
            headers={
                "Content-Disposition": f'inline; filename="{info.name}"',
                "ETag": f'"{info.sha256}"',
                "Cache-Control": "private, max-age=31536000, immutable",
            },
        )

    return app


def log_refusal(status_code: int, body: dict[str, Any]) -> None:
    """One WARNING per refused event: status, why, and which fields were wrong — their path
    and the kind of error only: a field's message may quote its value, and a body carries
    names, e-mails, addresses. The event's id, type and mission come from the log context
    when the body got that far."""
    errors = body.get("errors") or []
    fields = "; ".join(f"{e.get('loc')}: {e.get('type')}" for e in errors if isinstance(e, dict))
    log.warning(
        "event refused %d %s: %s%s",
        status_code,
        body.get("status", "rejected"),
        body.get("detail", ""),
        f" ({fields})" if fields else "",
    )


def __getattr__(name: str) -> FastAPI:
    """`uvicorn starter.gateway.api:app` builds the app from the environment on first access."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
