"""The parties' postal addresses of `proposal.submitted` (a contract extension): required by
the gateway for new events, optional in the models so that histories recorded without them
still deserialize; printed on the documents with the parties' VAT numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from stdnum.fr import tva

from domain.billing_documents import client_party, party
from domain.vat import french_vat_number
from schemas.events import PostalAddress, ProposalSubmitted
from schemas.mission import MissionInput
from starter.gateway.events import parse_event
from tests.support.factories import CLIENT_ADDRESS, envelope, proposal_submitted
from tests.support.gateway import parse_errors


def _raw(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_the_addresses_are_parsed() -> None:
    event = parse_event(_raw(envelope("proposal.submitted", proposal_submitted())))
    assert isinstance(event.payload, ProposalSubmitted)
    client, provider = event.payload.client.address, event.payload.provider.address
    assert client is not None and client.city == "Paris" and client.postal_code == "75017"
    assert provider is not None and provider.lines == ["8 rue des Tanneurs"]


@pytest.mark.parametrize("who", ["client", "provider"])
def test_a_new_event_without_an_address_is_refused_with_its_path(who: str) -> None:
    data = proposal_submitted()
    del data[who]["address"]
    assert parse_errors(data) == {f"data.{who}.address": "Field required"}


def test_a_null_address_is_refused_alongside_other_errors() -> None:
    data = proposal_submitted(tjm="abc")
    data["client"]["address"] = None
    errors = parse_errors(data)
    assert {"data.tjm", "data.client.address"} <= set(errors)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"lines": []}, "data.client.address.lines"),
        ({"lines": ["a", "b", "c", "d"]}, "data.client.address.lines"),
        ({"postal_code": "7501"}, "data.client.address"),  # French: five digits
        ({"city": " "}, "data.client.address.city"),
        ({"country": "France"}, "data.client.address.country"),
        ({"street": "1 rue X"}, "data.client.address.street"),  # unknown field
    ],
)
def test_a_malformed_address_names_the_field(change: dict[str, Any], loc: str) -> None:
    data = proposal_submitted()
    data["client"]["address"] = {**CLIENT_ADDRESS, **change}
    assert loc in parse_errors(data)


def test_the_provider_address_is_in_the_provider_country() -> None:
    data = proposal_submitted()
    data["provider"]["country"] = "BE"
    errors = parse_errors(data)
    assert "data.provider.address.country" in errors
    assert "BE" in errors["data.provider.address.country"]


def test_a_foreign_postal_code_is_free_form() -> None:
    address = PostalAddress(
        lines=["Keizersgracht 1"], postal_code="1015 CJ", city="Amsterdam", country="NL"
    )
    assert address.postal_code == "1015 CJ"


def test_histories_without_addresses_still_deserialize() -> None:
    """A MissionInput recorded before the extension (what tests/histories/ hold)."""
    data = proposal_submitted("P-OLD")
    del data["client"]["address"]
    del data["provider"]["address"]
    recorded = {"event_id": "evt-1", "occurred_at": "2026-11-20T10:00:00Z", "proposal": data}
    mission = MissionInput.model_validate(recorded)
    assert mission.proposal.client.address is None
    assert mission.proposal.provider.address is None


def test_french_vat_numbers_follow_from_the_siren() -> None:
    assert french_vat_number("303265045") == "FR40303265045"
    for siren in ("325437259", "200780963", "518554019", "732829320"):
        assert tva.is_valid(french_vat_number(siren))


def test_a_party_carries_its_address_and_vat_number() -> None:
    address = PostalAddress.model_validate(CLIENT_ADDRESS)
    client = client_party("Acme Industries", "325437259", address, None)
    assert client.address_lines == CLIENT_ADDRESS["lines"]
    assert (client.postcode, client.city, client.country) == ("75017", "Paris", "FR")
    assert client.vat_number == "FR96325437259"
    franchise = party(
        "Léa Petit", "518554019", address, vat_number=None, individual_entrepreneur=True
    )
    assert franchise.vat_number is None
    assert franchise.display_name == "Léa Petit EI"
    abroad = PostalAddress(
        lines=["Mannerheimintie 12"], postal_code="00100", city="Helsinki", country="FI"
    )
    assert party("Nordic Data Oy", "847144854", abroad, vat_number="FI20774740").vat_number == (
        "FI20774740"
    )


def test_an_address_has_at_most_three_lines() -> None:
    with pytest.raises(ValidationError):
        PostalAddress(lines=["1", "2", "3", "4"], postal_code="75001", city="Paris", country="FR")
