"""Edge validation of platform events and their signatures (no server needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.events import PAYLOADS, CraValidated, ProposalSubmitted
from starter.gateway.dispatch import handler_for
from starter.gateway.events import InvalidEvent, parse_event
from starter.gateway.signing import is_valid, sign
from tests.support.factories import envelope, proposal_submitted


def _raw(event: dict[str, object]) -> bytes:
    return json.dumps(event).encode()


def test_valid_proposal_is_parsed_into_its_payload_model() -> None:
    event = parse_event(_raw(envelope("proposal.submitted", proposal_submitted("P-1"))))
    assert isinstance(event.payload, ProposalSubmitted)
    assert event.payload.tjm == Decimal("650.00")
    assert event.payload.proposal_id == "P-1"


def test_every_error_is_reported_with_its_path() -> None:
    data = proposal_submitted(tjm="650.123", end_date="2026-01-01")
    data["client"]["approvers"] = []
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_raw(envelope("proposal.submitted", data)))
    locs = {error["loc"] for error in caught.value.errors}
    assert {"data.tjm", "data.client.approvers"} <= locs


def test_end_before_start_is_refused() -> None:
    data = proposal_submitted(end_date="2026-01-01")
    with pytest.raises(InvalidEvent, match="invalid") as caught:
        parse_event(_raw(envelope("proposal.submitted", data)))
    assert "end_date must be on or after start_date" in caught.value.errors[0]["msg"]


def test_vat_franchise_needs_an_auto_entrepreneur() -> None:
    data = proposal_submitted()
    data["provider"]["vat_franchise"] = True
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_raw(envelope("proposal.submitted", data)))
    assert "293 B" in caught.value.errors[0]["msg"]


def test_rejected_document_needs_a_comment() -> None:
    event = envelope("document.reviewed", {"document_id": "D-1", "accepted": False})
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_raw(event))
    assert "comment is required" in caught.value.errors[0]["msg"]


def test_not_json_is_refused_clearly() -> None:
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        parse_event(b"{nope")


def test_every_contract_type_has_a_payload_and_a_handler() -> None:
    assert len(PAYLOADS) == 25
    for event_type in PAYLOADS:
        assert handler_for(event_type) is not None


def test_signature_round_trip_and_tampering() -> None:
    body = b'{"a":1}'
    header = sign(body, "s3cret")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert is_valid(body, header, "s3cret")
    assert not is_valid(body + b" ", header, "s3cret")
    assert not is_valid(body, header, "other")
    assert not is_valid(body, None, "s3cret")
    assert not is_valid(body, header.removeprefix("sha256="), "s3cret")


VALIDATION = {"mission_id": "M-1", "month": "2026-11", "approver_id": "APR-1"}
RECEIVED = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


def test_a_dated_payload_carries_the_envelopes_occurred_at() -> None:
    happened = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    event = parse_event(
        _raw(envelope("cra.validated", VALIDATION, occurred_at=happened)), received_at=RECEIVED
    )
    assert isinstance(event.payload, CraValidated)
    assert event.payload.occurred_at == happened == event.occurred_at


@pytest.mark.parametrize("ahead", [timedelta(minutes=6), timedelta(days=1)])
def test_an_occurred_at_in_the_future_is_refused(ahead: timedelta) -> None:
    raw = _raw(envelope("cra.validated", VALIDATION, occurred_at=RECEIVED + ahead))
    with pytest.raises(InvalidEvent) as refused:
        parse_event(raw, received_at=RECEIVED)
    assert refused.value.errors[0]["loc"] == "occurred_at"
    assert "more than 5 minutes after the event was received" in refused.value.errors[0]["msg"]
    # Within the clock skew allowed: accepted.
    ok = envelope("cra.validated", VALIDATION, occurred_at=RECEIVED + timedelta(minutes=4))
    assert parse_event(_raw(ok), received_at=RECEIVED).occurred_at > RECEIVED


def test_occurred_at_inside_data_is_refused() -> None:
    data = {**VALIDATION, "occurred_at": RECEIVED.isoformat()}
    with pytest.raises(InvalidEvent, match="belongs to the envelope"):
        parse_event(_raw(envelope("cra.validated", data)), received_at=RECEIVED)
