"""The OpenAPI of `POST /events` describes the envelope and every event type's `data`, while the
route still reads, signs and validates the raw body itself (no server, no Temporal)."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from schemas.common import Model
from schemas.events import MAX_FAVOURITED_BY, PAYLOADS, RfpClosed
from settings import Settings
from starter.gateway.api import COMPONENTS, ENVELOPE_ONLY, add_event_schemas, create_app
from starter.gateway.events import REQUIRED_AT_EDGE
from starter.gateway.processor import EventProcessor, Outcome
from starter.gateway.signing import signed_headers
from tests.support.factories import envelope, proposal_submitted

SECRET = "openapi-test-secret"


class RecordingProcessor:
    """Stands for the EventProcessor: records the raw bodies it is handed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def process(self, raw: bytes) -> Outcome:
        self.bodies.append(raw)
        return Outcome(202, {"event_id": "e", "status": "accepted", "workflow_id": "w"})


def _app(processor: RecordingProcessor | None = None) -> FastAPI:
    return create_app(
        Settings(gateway_secret=SECRET),
        processor=cast(EventProcessor, processor or RecordingProcessor()),
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = _app().openapi()
    return schema


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith(COMPONENTS), ref
        node = document["components"]["schemas"][ref.removeprefix(COMPONENTS)]
    return node


def _body_schema(document: dict[str, Any]) -> dict[str, Any]:
    body = document["paths"]["/events"]["post"]["requestBody"]
    assert body["required"] is True
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def _data_fields(model: type[Model]) -> tuple[set[str], set[str]]:
    """(every field, required fields) of a payload as the platform sends it."""
    fields = {name: info for name, info in model.model_fields.items() if name not in ENVELOPE_ONLY}
    return set(fields), {name for name, info in fields.items() if info.is_required()}


def test_every_event_type_is_one_envelope_of_the_body(document: dict[str, Any]) -> None:
    schema = _body_schema(document)
    mapping = schema["discriminator"]["mapping"]
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(PAYLOADS)
    assert sorted(option["$ref"] for option in schema["oneOf"]) == sorted(mapping.values())
    for event_type, ref in mapping.items():
        variant = _resolve(document, {"$ref": ref})
        assert variant["properties"]["type"]["const"] == event_type
        assert set(variant["required"]) == {"event_id", "type", "occurred_at", "data"}
        assert variant["additionalProperties"] is False
        assert variant["properties"]["occurred_at"]["format"] == "date-time"
        assert variant["properties"]["event_id"]["maxLength"] == 200


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_every_event_type_has_its_data_schema_described(
    document: dict[str, Any], event_type: str
) -> None:
    mapping = _body_schema(document)["discriminator"]["mapping"]
    variant = _resolve(document, {"$ref": mapping[event_type]})
    data = _resolve(document, variant["properties"]["data"])
    fields, required = _data_fields(PAYLOADS[event_type])
    assert data["type"] == "object"
    assert data["additionalProperties"] is False
    assert set(data["properties"]) == fields
    assert set(data.get("required", [])) == required
    assert not set(ENVELOPE_ONLY) & set(data["properties"]), "occurred_at is never in data"


def test_fields_required_at_the_edge_are_required_in_the_schema(document: dict[str, Any]) -> None:
    mapping = _body_schema(document)["discriminator"]["mapping"]
    for event_type, fields in REQUIRED_AT_EDGE.items():
        data = _resolve(
            document, _resolve(document, {"$ref": mapping[event_type]})["properties"]["data"]
        )
        for parent, name in fields:
            holder = _resolve(document, data["properties"][parent])
            assert name in holder["required"], f"{event_type}: {parent}.{name}"
            model = _resolve(document, holder["properties"][name])
            expected = {
                "address": {"lines", "postal_code", "city", "country"},
                "registration": {"form", "share_capital", "rcs_city"},
            }[name]
            assert set(model["required"]) >= expected


def test_nested_models_and_enums_are_described(document: dict[str, Any]) -> None:
    mapping = _body_schema(document)["discriminator"]["mapping"]
    cra = _resolve(document, {"$ref": mapping["cra.submitted"]})
    lines = _resolve(document, cra["properties"]["data"])["properties"]["expenses"]["items"]
    assert set(_resolve(document, lines)["properties"]) == {
        "label",
        "amount",
        "vat_rate",
        "receipt_ref",
    }
    contract = _resolve(
        document, _resolve(document, {"$ref": mapping["contract.signed"]})["properties"]["data"]
    )
    offer = _resolve(document, contract["properties"]["payment_offer"])
    assert offer["enum"] == ["basic", "express", "flash", "back_to_back", "immediate"]


def test_rfp_closed_describes_its_favourites(document: dict[str, Any]) -> None:
    mapping = _body_schema(document)["discriminator"]["mapping"]
    closed = _resolve(
        document, _resolve(document, {"$ref": mapping["rfp.closed"]})["properties"]["data"]
    )
    assert closed.get("required", []) == ["rfp_id"]
    favourites = closed["properties"]["favourited_by"]
    assert favourites["type"] == "array"
    assert favourites["maxItems"] == MAX_FAVOURITED_BY
    assert "favourites" in favourites["description"]
    item = _resolve(document, favourites["items"])
    assert item["type"] == "string"
    assert item["maxLength"] == 254
    assert "@" in item["pattern"]


def test_rfp_closed_favourites_are_e_mails_once_each_and_bounded() -> None:
    assert RfpClosed(rfp_id="RFP-1").favourited_by == []
    closed = RfpClosed(rfp_id="RFP-1", favourited_by=["A@x.fr", "a@X.fr", " b@y.fr "])
    assert closed.favourited_by == ["a@x.fr", "b@y.fr"]
    with pytest.raises(ValidationError):
        RfpClosed(rfp_id="RFP-1", favourited_by=["not an e-mail"])
    with pytest.raises(ValidationError):
        RfpClosed(
            rfp_id="RFP-1",
            favourited_by=[f"p{i}@x.fr" for i in range(MAX_FAVOURITED_BY + 1)],
        )


def test_every_reference_of_the_document_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for item in node for ref in refs(item)]
        return []

    missing = {ref for ref in refs(document) if ref.removeprefix(COMPONENTS) not in schemas}
    assert not missing
    json.dumps(document)  # serialisable as /openapi.json


def test_a_name_fastapi_uses_differently_is_renamed_with_its_references() -> None:
    target: dict[str, Any] = {
        "paths": {"/events": {"post": {"requestBody": {"$ref": COMPONENTS + "Offer"}}}},
        "components": {"schemas": {"Offer": {"type": "integer"}, "Kind": {"enum": ["a"]}}},
    }
    add_event_schemas(
        target,
        {
            "Offer": {"enum": ["basic"]},
            "Kind": {"enum": ["a"]},
            "Data": {"properties": {"offer": {"$ref": COMPONENTS + "Offer"}}},
        },
    )
    schemas = target["components"]["schemas"]
    assert schemas["Offer"] == {"type": "integer"}  # FastAPI's, untouched
    assert schemas["EventOffer"] == {"enum": ["basic"]}
    assert schemas["Kind"] == {"enum": ["a"]}  # the same schema: shared
    assert schemas["Data"]["properties"]["offer"]["$ref"] == COMPONENTS + "EventOffer"
    assert target["paths"]["/events"]["post"]["requestBody"]["$ref"] == COMPONENTS + "EventOffer"


def _client(processor: RecordingProcessor) -> httpx.AsyncClient:
    """The gateway app over ASGI, no socket (like tests/fixtures/gateway.py)."""
    transport = httpx.ASGITransport(app=_app(processor))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


async def test_the_raw_body_is_still_signed_and_handed_over_as_sent() -> None:
    processor = RecordingProcessor()
    raw = json.dumps(envelope("proposal.submitted", proposal_submitted("P-OPENAPI"))).encode()
    async with _client(processor) as client:
        answer = await client.post(
            "/events",
            content=raw,
            headers={**signed_headers(raw, SECRET), "Content-Type": "application/json"},
        )
        refused = await client.post(
            "/events",
            content=raw,
            headers=signed_headers(raw, "another secret"),
        )
    assert answer.status_code == 202
    assert refused.status_code == 401
    assert processor.bodies == [raw]  # the wrongly signed one: nothing handed over


async def test_a_body_the_schema_would_refuse_still_reaches_the_gateway_checks() -> None:
    # FastAPI does not validate the documented body: a malformed event is answered by the
    # processor's own parsing (the recording stand-in here accepts anything).
    processor = RecordingProcessor()
    raw = b'{"not": "an event"}'
    async with _client(processor) as client:
        answer = await client.post("/events", content=raw, headers=signed_headers(raw, SECRET))
    assert answer.status_code == 202
    assert processor.bodies == [raw]
