"""HTTP event gateway: `POST /events` (EVENTS.md), `GET /missions/{id}`,
`GET /missions/{id}/explain`, `GET /missions/{id}/documents[/{name}]`, `GET /health`,
OpenAPI docs at `/docs`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from schemas.mission import MissionView
from settings import Settings, get_settings
from starter.documents import (
    MissionDocuments,
    NoSuchDocument,
    NoSuchMission,
    list_documents,
    read_document,
)
from starter.events import EventError
from starter.explain import MissionExplanation, explain_mission
from starter.missions import MissionUnavailable, UnknownMission, mission_view
from starter.processor import EventProcessor, open_processor
from starter.signing import SIGNATURE_HEADER, is_valid


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
    first_delivery: str


class Rejected(BaseModel):
    status: str = "rejected"
    detail: str
    errors: list[dict[str, Any]] = []


class Problem(BaseModel):
    detail: str


def create_app(
    settings: Settings | None = None, processor: EventProcessor | None = None
) -> FastAPI:
    """The gateway; refuses to start without an HMAC secret outside the dev stack.

    Without `processor` it connects to Temporal and PostgreSQL for its lifetime (tests pass
    their own, bound to the test servers).
    """
    settings = settings or get_settings()
    secret = settings.effective_gateway_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if processor is not None:
            yield
            return
        async with open_processor(settings) as opened:
            app.state.processor = opened
            yield

    app = FastAPI(
        title="Contracting orchestrator — event gateway",
        description=(
            "The marketplace backend posts platform events here (see EVENTS.md). Each body "
            "is signed: `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    if processor is not None:
        app.state.processor = processor

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/events",
        status_code=202,
        response_model=Accepted,
        responses={
            200: {"model": Duplicate, "description": "This event_id was already received."},
            401: {"model": Rejected, "description": "Missing or wrong signature."},
            404: {"model": Rejected, "description": "Unknown mission or proposal."},
            409: {"model": Rejected, "description": "Not applicable in the current state."},
            422: {"model": Rejected, "description": "Malformed envelope or payload."},
            501: {"model": Rejected, "description": "Type not handled by this version yet."},
            503: {"model": Rejected, "description": "Temporal or database unavailable."},
        },
    )
    async def post_event(
        request: Request,
        x_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    ) -> JSONResponse:
        raw = await request.body()
        if not is_valid(raw, x_signature, secret):
            return JSONResponse(
                status_code=401,
                content=Rejected(
                    detail=f"missing or wrong {SIGNATURE_HEADER} header: expected "
                    "'sha256=<hex HMAC-SHA256 of the raw body with the shared secret>'"
                ).model_dump(),
            )
        processor: EventProcessor = request.app.state.processor
        try:
            outcome = await processor.process(raw)
        except EventError as exc:
            return JSONResponse(status_code=exc.status_code, content=exc.body())
        return JSONResponse(status_code=outcome.status_code, content=outcome.body)

    @app.get(
        "/missions/{mission_id}",
        response_model=MissionView,
        responses={
            404: {"model": Problem, "description": "No such mission."},
            503: {"model": Problem, "description": "Temporal unavailable."},
        },
    )
    async def get_mission(mission_id: str, request: Request) -> MissionView | JSONResponse:
        """The mission as its workflow sees it: stage, proposal, legal verification (what
        each side still has to provide), the provider's documents, timeline."""
        processor: EventProcessor = request.app.state.processor
        try:
            return await mission_view(processor.temporal, mission_id)
        except UnknownMission as exc:
            return JSONResponse(status_code=404, content=Problem(detail=str(exc)).model_dump())
        except MissionUnavailable as exc:
            return JSONResponse(status_code=503, content=Problem(detail=str(exc)).model_dump())

    @app.get(
        "/missions/{mission_id}/explain",
        response_model=MissionExplanation,
        responses={
            404: {"model": Problem, "description": "No such mission."},
            503: {"model": Problem, "description": "Temporal unavailable."},
        },
    )
    async def explain_mission_route(
        mission_id: str,
        request: Request,
        month: Annotated[
            str | None, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
        ] = None,
    ) -> MissionExplanation | JSONResponse:
        """For support, month by month (every month so far, or `month`): why the CRA is not
        visible, why the payout has not arrived (or when it was paid), in French, with the
        facts (dates, amounts, invoice number) each reason rests on."""
        processor: EventProcessor = request.app.state.processor
        try:
            return await explain_mission(processor.temporal, mission_id, month)
        except UnknownMission as exc:
            return JSONResponse(status_code=404, content=Problem(detail=str(exc)).model_dump())
        except MissionUnavailable as exc:
            return JSONResponse(status_code=503, content=Problem(detail=str(exc)).model_dump())

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
            return JSONResponse(status_code=404, content=Problem(detail=str(exc)).model_dump())

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
            return JSONResponse(status_code=404, content=Problem(detail=str(exc)).model_dump())
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


def __getattr__(name: str) -> FastAPI:
    """`uvicorn starter.api:app` builds the app from the environment on first access."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
