"""What the gateway answers to hostile or malformed requests at its edge: a 4xx that names the
problem, never a 500 (issue 12 point 6). The app runs over ASGI with a stand-in processor that
parses like the real one (no Temporal, no database)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest

from settings import Settings
from starter.gateway.api import create_app
from starter.gateway.events import parse_event
from starter.gateway.processor import EventProcessor, Outcome
from starter.gateway.signing import SIGNATURE_HEADER, sign
from tests.support.factories import envelope

SECRET = "edge-test-secret"
VALIDATION = {"mission_id": "M-1", "month": "2026-10", "approver_id": "APR-1"}


class ParsingProcessor:
    """Stands for the EventProcessor: parses the event as the real one does, then accepts it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def process(self, raw: bytes) -> Outcome:
        event = parse_event(raw)
        self.bodies.append(raw)
        return Outcome(202, {"event_id": event.event_id, "status": "accepted", "workflow_id": "w"})


@pytest.fixture
def processor() -> ParsingProcessor:
    return ParsingProcessor()


@pytest.fixture
async def client(processor: ParsingProcessor) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(gateway_secret=SECRET), processor=cast(EventProcessor, processor))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


def _raw(event: dict[str, object]) -> bytes:
    return json.dumps(event).encode()


async def _post(
    client: httpx.AsyncClient, raw: bytes, signature: str | bytes | None = None
) -> httpx.Response:
    header = sign(raw, SECRET) if signature is None else signature
    value = header.encode("latin-1") if isinstance(header, str) else header
    return await client.post("/events", content=raw, headers={SIGNATURE_HEADER.encode(): value})


@pytest.mark.parametrize(
    ("signature", "named"),
    [
        ("sha256=" + "é" * 64, "64 hexadecimal digits"),
        ("sha256=" + "z" * 64, "64 hexadecimal digits"),
        ("sha256=abc", "64 hexadecimal digits"),
        ("md5=" + "0" * 64, "sha256="),
        ("", "missing"),
    ],
    ids=["non-ascii", "not-hex", "too-short", "other-scheme", "empty"],
)
async def test_a_malformed_signature_is_a_401_naming_the_problem(
    client: httpx.AsyncClient, processor: ParsingProcessor, signature: str, named: str
) -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    header = signature.encode("latin-1")  # as a client may send it: raw bytes, not ASCII
    answer = await _post(client, raw, header)
    assert answer.status_code == 401, answer.text
    assert named in answer.json()["detail"]
    assert processor.bodies == []


async def test_a_well_formed_but_wrong_signature_says_it_does_not_match(
    client: httpx.AsyncClient,
) -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    answer = await _post(client, raw, sign(raw, "another secret"))
    assert answer.status_code == 401
    assert "does not match" in answer.json()["detail"]
    upper_hex = "sha256=" + sign(raw, SECRET).removeprefix("sha256=").upper()
    assert (await _post(client, raw, upper_hex)).status_code == 202
