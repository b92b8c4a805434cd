"""Logs, probes and metrics pieces without servers: JSON lines with the mission and event of
the work, refused events logged without personal data, the ledger metrics' cache."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment

from observability import context
from observability.logs import ContextFilter, Enqueuer, JsonFormatter, TextFormatter
from observability.probes import readiness
from settings import Settings
from starter.gateway.api import create_app
from starter.gateway.events import parse_event
from starter.gateway.processor import EventProcessor, Outcome
from starter.gateway.signing import signed_headers
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import provider

SECRET = "observe-secret"


class ParsingProcessor:
    """Stands for the EventProcessor: parses the event as the real one does (no Temporal, no
    database), then accepts it."""

    async def process(self, raw: bytes) -> Outcome:
        event = parse_event(raw)
        return Outcome(202, {"event_id": event.event_id, "status": "accepted", "workflow_id": "w"})


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the logger `observed` writes, as the production JSON handler would."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("observed")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # A context of the test's own: an earlier test of this process that parsed an event
    # outside a request (parse_event binds its mission and event) must not show here.
    try:
        with context.scope():
            yield out
    finally:
        logger.removeHandler(handler)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_carries_the_mission_and_event_of_the_request(json_lines: io.StringIO) -> None:
    with context.scope(event_id="evt-1"):
        context.bind(mission_id="P-42", event_type="cra.validated")
        logging.getLogger("observed").info("validated %s", "2026-10")
    logging.getLogger("observed").info("outside")
    inside, outside = _lines(json_lines)
    assert inside["message"] == "validated 2026-10"
    assert (inside["mission_id"], inside["event_id"], inside["event_type"]) == (
        "P-42",
        "evt-1",
        "cra.validated",
    )
    assert inside["level"] == "INFO" and inside["logger"] == "observed"
    assert "mission_id" not in outside and "event_id" not in outside


async def test_an_activity_logs_its_mission_from_its_workflow_id(json_lines: io.StringIO) -> None:
    @activity.defn
    async def record() -> None:
        logging.getLogger("observed").info("recorded")

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="payout-P-42-2026-10")
    await env.run(record)
    assert _lines(json_lines)[0]["mission_id"] == "P-42"


@pytest.mark.parametrize(
    ("workflow_id", "mission"),
    [
        ("mission-P-1", "P-1"),
        ("cra-P-1-2026-10", "P-1"),
        ("payout-P-1-2026-10", "P-1"),
        ("payout-P-1-2026-10-p2", "P-1"),
        ("provider-123456789", None),
    ],
)
def test_the_mission_of_a_workflow(workflow_id: str, mission: str | None) -> None:
    assert context.mission_of_workflow(workflow_id) == mission


def test_the_queue_keeps_the_traceback_apart_from_the_message() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("M-1",), None)
        record.exc_info = __import__("sys").exc_info()
    queued = Enqueuer(cast(Any, None)).prepare(record)
    entry = json.loads(JsonFormatter().format(queued))
    assert entry["message"] == "failed M-1"
    assert "ValueError: boom" in entry["exception"]
    assert "ValueError: boom" in TextFormatter().format(queued)


async def test_a_refused_event_is_logged_with_its_reason_and_no_personal_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    vat_number = "FR00DURANDPAUL"  # invalid: its error message quotes it
    data = proposal_submitted(provider=provider(vat_number=vat_number))
    event = envelope("proposal.submitted", data)
    body = json.dumps(event).encode()
    app = create_app(
        Settings(gateway_secret=SECRET), processor=cast(EventProcessor, ParsingProcessor())
    )
    transport = httpx.ASGITransport(app=app)
    caplog.handler.addFilter(ContextFilter())  # as production's handler (observability.logs)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        with caplog.at_level(logging.WARNING, logger="contracting.gateway"):
            response = await http.post(
                "/events", content=body, headers=signed_headers(body, SECRET)
            )
    assert response.status_code == 422
    (record,) = [r for r in caplog.records if r.name == "contracting.gateway"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("event refused 422 rejected: ")
    assert "(data.provider.vat_number: value_error)" in record.getMessage()
    assert vat_number in response.text, "the platform is told which value is wrong"
    assert getattr(record, "event_id", None) == event["event_id"]
    for personal in (vat_number, "paul@durand-conseil.example", "Durand Conseil"):
        assert personal not in record.getMessage()


async def test_readiness_names_what_failed_and_bounds_a_hang() -> None:
    async def ok() -> None:
        return None

    async def refused() -> None:
        raise ConnectionRefusedError("127.0.0.1:1")

    async def hangs() -> None:
        await asyncio.sleep(60)

    state = await readiness({"temporal": ok, "database": refused, "smtp": hangs}, within=0.05)
    assert state.status_code == 503
    assert state.body() == {
        "status": "unavailable",
        "checks": {
            "temporal": "ok",
            "database": "unavailable (ConnectionRefusedError)",
            "smtp": "timed out after 0.05 s",
        },
        "failed": ["database", "smtp"],
    }
    assert (await readiness({"temporal": ok})).status_code == 200


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger's and uvicorn's set-up, restored after a test that replaces them."""
    from observability.logs import UVICORN_LOGGERS, stop_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    uvicorn = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in UVICORN_LOGGERS
    }
    on_message = (
        activity.logger.activity_info_on_message,
        workflow.logger.workflow_info_on_message,
    )
    try:
        yield
    finally:
        stop_logging()
        activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message = (
            on_message
        )
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, (handlers, propagate) in uvicorn.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate


def test_configured_json_logs_are_written_off_the_caller_with_their_context(
    root_logging: None,
) -> None:
    from observability.logs import configure_logging, stop_logging

    out = io.StringIO()
    configure_logging("json", stream=out)
    with context.scope(mission_id="P-7", event_id="evt-7"):
        logging.getLogger("contracting.gateway").warning("event refused %d", 409)
    logging.getLogger("uvicorn.error").info("started")
    stop_logging()  # flushes the queue
    refused, started = _lines(out)
    assert refused["message"] == "event refused 409"
    assert (refused["mission_id"], refused["event_id"], refused["level"]) == (
        "P-7",
        "evt-7",
        "WARNING",
    )
    assert started["logger"] == "uvicorn.error", "uvicorn's lines are JSON too"
