"""What the gateway answers to hostile or malformed requests at its edge: a 4xx that names the
problem, never a 500 (issue 12 point 6). The app runs over ASGI with a stand-in processor that
parses like the real one (no Temporal, no database)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import httpx
import pytest

from settings import Settings
from starter.gateway.api import create_app
from starter.gateway.events import InvalidEvent, parse_event
from starter.gateway.processor import EventProcessor, Outcome
from starter.gateway.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import TEST_READ_TOKENS, read_headers

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


@asynccontextmanager
async def _gateway(
    settings: Settings, processor: ParsingProcessor | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app with `settings` over ASGI (no socket); a 500 is answered, not raised."""
    app = create_app(settings, processor=cast(EventProcessor, processor or ParsingProcessor()))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=read_headers()
    ) as http:
        yield http


@pytest.fixture
async def client(processor: ParsingProcessor) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(gateway_secret=SECRET, read_tokens=TEST_READ_TOKENS)
    async with _gateway(settings, processor) as http:
        yield http


def _raw(event: dict[str, object]) -> bytes:
    return json.dumps(event).encode()


async def _post(
    client: httpx.AsyncClient, raw: bytes, signature: str | bytes | None = None
) -> httpx.Response:
    """Signed now with SECRET, or with `signature` in place of the right X-Signature."""
    headers = {k.encode(): v.encode() for k, v in signed_headers(raw, SECRET).items()}
    if signature is not None:
        value = signature.encode("latin-1") if isinstance(signature, str) else signature
        headers[SIGNATURE_HEADER.encode()] = value
    return await client.post("/events", content=raw, headers=headers)


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
    right = signed_headers(raw, SECRET)[SIGNATURE_HEADER]
    upper_hex = "sha256=" + right.removeprefix("sha256=").upper()
    assert (await _post(client, raw, upper_hex)).status_code == 202


PAYMENT = {"invoice_number": "F-200780963-000001", "paid_on": "2026-10-30"}


@pytest.mark.parametrize(
    ("raw", "loc", "named"),
    [
        (
            _raw(envelope("client_payment.received", {**PAYMENT, "amount": 1e26})),
            "data.amount",
            "too large",
        ),
        (
            _raw(envelope("client_payment.received", {**PAYMENT, "amount": "1e26"})),
            "data.amount",
            "too large",
        ),
        (
            _raw(envelope("cra.validated", VALIDATION)).replace(b'"APR-1"', b"1" + b"0" * 5000),
            None,
            "digits",
        ),
        (
            _raw(envelope("cra.validated", VALIDATION)).replace(
                b'"APR-1"', b"[" * 100_000 + b"]" * 100_000
            ),
            None,
            "nested",
        ),
    ],
    ids=["amount-1e26", "amount-1e26-string", "5000-digit-integer", "deep-nesting"],
)
async def test_a_signed_body_with_huge_numbers_or_deep_nesting_is_a_422_naming_it(
    client: httpx.AsyncClient, raw: bytes, loc: str | None, named: str
) -> None:
    answer = await _post(client, raw)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    if loc is None:
        assert named in body["detail"]
    else:
        error = next(e for e in body["errors"] if e["loc"] == loc)
        assert named in error["msg"]


LIMIT = 4096


class CountingBody:
    """A request body streamed in 1 KiB chunks, counting what the gateway pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            self.sent += 1024
            yield b" " * 1024


async def _post_stream(body: CountingBody, headers: dict[str, str]) -> httpx.Response:
    async with _gateway(Settings(gateway_secret=SECRET, gateway_max_body_bytes=LIMIT)) as http:
        return await http.post(
            "/events", content=body, headers={SIGNATURE_HEADER: "sha256=" + "0" * 64, **headers}
        )


async def test_a_body_declared_over_the_limit_is_a_413_before_it_is_read() -> None:
    body = CountingBody(1024 * 1024)
    answer = await _post_stream(body, {"Content-Length": str(body.size)})
    assert answer.status_code == 413, answer.text
    assert f"{LIMIT} bytes" in answer.json()["detail"]
    assert body.sent <= 1024  # at most the first chunk pulled, never the whole body


async def test_a_streamed_body_is_cut_at_the_limit_with_a_413() -> None:
    body = CountingBody(1024 * 1024)  # no Content-Length: chunked
    answer = await _post_stream(body, {})
    assert answer.status_code == 413, answer.text
    assert body.sent <= LIMIT + 1024


async def test_a_body_under_the_limit_still_reaches_the_signature_check() -> None:
    answer = await _post_stream(CountingBody(2048), {})
    assert answer.status_code == 401


async def _post_at(
    raw: bytes, signed_at: float | None, *, allow_untimestamped: bool = False
) -> tuple[httpx.Response, ParsingProcessor]:
    """Post `raw` signed the current way at `signed_at` (Unix seconds), or the legacy way
    (body only, no timestamp) when None."""
    processor = ParsingProcessor()
    settings = Settings(gateway_secret=SECRET, gateway_allow_untimestamped=allow_untimestamped)
    if signed_at is None:
        headers = {SIGNATURE_HEADER: sign(raw, SECRET)}
    else:
        headers = signed_headers(raw, SECRET, now=signed_at)
    async with _gateway(settings, processor) as http:
        return await http.post("/events", content=raw, headers=headers), processor


async def test_a_signature_is_valid_for_five_minutes_from_its_timestamp() -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    fresh, _ = await _post_at(raw, time.time() - 60)
    assert fresh.status_code == 202, fresh.text
    for skew in (-400, 400):  # replayed later, or signed by a clock far ahead
        replayed, processor = await _post_at(raw, time.time() + skew)
        assert replayed.status_code == 401, replayed.text
        assert TIMESTAMP_HEADER in replayed.json()["detail"]
        assert "300 seconds" in replayed.json()["detail"]
        assert processor.bodies == []


async def test_a_body_signed_without_timestamp_is_refused_unless_allowed() -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    legacy, processor = await _post_at(raw, None)
    assert legacy.status_code == 401, legacy.text
    assert f"missing {TIMESTAMP_HEADER}" in legacy.json()["detail"]
    assert processor.bodies == []
    allowed, _ = await _post_at(raw, None, allow_untimestamped=True)
    assert allowed.status_code == 202, allowed.text


async def test_the_timestamp_is_covered_by_the_signature() -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    headers = signed_headers(raw, SECRET, now=time.time() - 3600)
    headers[TIMESTAMP_HEADER] = str(int(time.time()))  # an old signature with a fresh date
    async with _gateway(Settings(gateway_secret=SECRET)) as http:
        answer = await http.post("/events", content=raw, headers=headers)
    assert answer.status_code == 401
    assert "does not match" in answer.json()["detail"]


async def test_several_secrets_are_valid_at_once_for_rotation() -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    settings = Settings(gateway_secret="new", gateway_extra_secrets="old, older")
    async with _gateway(settings) as http:
        answers = {
            secret: (
                await http.post("/events", content=raw, headers=signed_headers(raw, secret))
            ).status_code
            for secret in ("new", "old", "older", "retired")
        }
    assert answers == {"new": 202, "old": 202, "older": 202, "retired": 401}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "gateway.example"])
def test_the_dev_secret_is_refused_on_a_gateway_reachable_from_outside(host: str) -> None:
    # CONTRACTING_DEV_STACK=1 can come from a stray .env: it must not open a public gateway.
    with pytest.raises(RuntimeError, match="loopback"):
        create_app(Settings(dev_stack=True, gateway_host=host, gateway_secret=None))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
async def test_the_dev_secret_works_on_a_loopback_dev_stack(host: str) -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    async with _gateway(Settings(dev_stack=True, gateway_host=host, gateway_secret=None)) as http:
        answer = await http.post("/events", content=raw, headers=signed_headers(raw, "dev-secret"))
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize(
    "declared", [b"lots", b"\xb2", b"-1"], ids=["word", "superscript", "negative"]
)
async def test_a_content_length_that_is_not_a_number_is_a_400(
    client: httpx.AsyncClient, declared: bytes
) -> None:
    raw = _raw(envelope("cra.validated", VALIDATION))
    headers = {k.encode(): v.encode() for k, v in signed_headers(raw, SECRET).items()}
    answer = await client.post(
        "/events", content=raw, headers={**headers, b"Content-Length": declared}
    )
    assert answer.status_code == 400, answer.text
    assert "Content-Length" in answer.json()["detail"]


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59+00:00"])
def test_an_occurred_at_before_2000_is_refused(occurred_at: str) -> None:
    # Year 1 at +14:00 is before datetime.min in UTC: the Paris business date overflowed (500).
    event = {**envelope("cra.validated", VALIDATION), "occurred_at": occurred_at}
    with pytest.raises(InvalidEvent) as refused:
        parse_event(_raw(event))
    assert refused.value.errors[0]["loc"] == "occurred_at"
    assert "2000" in refused.value.errors[0]["msg"]


@pytest.mark.parametrize(
    ("event_type", "data", "loc"),
    [
        (
            "document.uploaded",
            {
                "document_id": "D-1",
                "provider_siren": "200780963",
                "kind": "kbis",
                "issued_on": "9999-12-31",
                "file_ref": "s3://d.pdf",
            },
            "data.issued_on",
        ),
        (
            "renewal.requested",
            {"mission_id": "M-1", "new_end_date": "9999-12-31"},
            "data.new_end_date",
        ),
        (
            "qualification_meeting.scheduled",
            {"proposal_id": "P-1", "at": "0001-01-01T00:00:00+14:00"},
            "data.at",
        ),
    ],
    ids=["issued-9999", "renewal-9999", "meeting-year-1"],
)
def test_a_date_outside_this_century_is_refused_at_its_path(
    event_type: str, data: dict[str, object], loc: str
) -> None:
    # Year 9999 plus a document's validity, or a timer in year 1, would overflow in the workflow.
    with pytest.raises(InvalidEvent) as refused:
        parse_event(_raw(envelope(event_type, data)))
    assert refused.value.errors[0]["loc"] == loc
    assert "between 2000-01-01 and 2099-12-31" in refused.value.errors[0]["msg"]


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "2026-13", "26-01"])
async def test_explain_of_a_month_out_of_range_is_a_422(
    client: httpx.AsyncClient, month: str
) -> None:
    """Issue 12 point 8: `?month=0000-01` raised "year 0 is out of range" (500)."""
    response = await client.get(f"/missions/M-1/explain?month={month}")
    assert response.status_code == 422, response.text
    assert "month" in response.text


async def test_text_with_a_nul_byte_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    """Issue 12 point 8: a NUL in the provider's name was accepted (202), then PostgreSQL
    refused it and the activity retried for ever."""
    data = proposal_submitted()
    data["provider"]["name"] = "Durand\u0000Conseil"
    response = await _post(client, _raw(envelope("proposal.submitted", data)))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == "data.provider.name" and "NUL" in error["msg"]
