"""The platform's payloads and events, with unique ids: the parties of a proposal, a provider's
legal documents, envelopes."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, date, datetime
from typing import Any

from stdnum import luhn

from schemas.enums import DocumentKind
from schemas.events import DocumentReviewed, DocumentUploaded

APPROVER = "APR-1"
"""The approver of `proposal_submitted`'s client."""
DOCUMENTS = (
    DocumentKind.URSSAF_VIGILANCE,
    DocumentKind.KBIS,
    DocumentKind.SWORN_STATEMENT,
    DocumentKind.FOREIGN_WORKERS_LIST,
)
"""The legal documents a French company provider needs."""

CLIENT_ADDRESS: dict[str, Any] = {
    "lines": ["Tour Acme", "12 avenue de la Grande Armée"],
    "postal_code": "75017",
    "city": "Paris",
    "country": "FR",
}
PROVIDER_ADDRESS: dict[str, Any] = {
    "lines": ["8 rue des Tanneurs"],
    "postal_code": "69002",
    "city": "Lyon",
    "country": "FR",
}


def new_siren() -> str:
    """A valid SIREN nobody else uses, so each test has its own provider workflow."""
    body = str(random.randint(10_000_000, 99_999_999))
    return body + luhn.calc_check_digit(body)


def foreign_address(country: str) -> dict[str, Any]:
    """A postal address abroad, for a provider whose `country` is not FR."""
    return {
        "lines": ["Mannerheimintie 12"],
        "postal_code": "00100",
        "city": "Helsinki",
        "country": country,
    }


CLIENT_REGISTRATION = {"form": "SA", "share_capital": "1200000.00", "rcs_city": "Paris"}
PROVIDER_REGISTRATION = {"form": "SARL", "share_capital": "10000.00", "rcs_city": "Lyon"}


def proposal_submitted(proposal_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The payload of a valid `proposal.submitted`, with unique ids."""
    proposal_id = proposal_id or f"P-{uuid.uuid4().hex[:10]}"
    data: dict[str, Any] = {
        "proposal_id": proposal_id,
        "rfp_id": "RFP-90064-1",
        "client": {
            "id": "CLI-1",
            "name": "Acme Industries",
            "siren": "325437259",
            "approvers": [{"id": APPROVER, "email": "claire.martin@acme.example"}],
            "address": CLIENT_ADDRESS,
            "registration": CLIENT_REGISTRATION,
        },
        "provider": {
            "siren": "200780963",
            "name": "Durand Conseil",
            "email": "paul@durand-conseil.example",
            "country": "FR",
            "legal_form": "company",
            "vat_franchise": False,
            "address": PROVIDER_ADDRESS,
            "registration": PROVIDER_REGISTRATION,
        },
        "tjm": "650.00",
        "start_date": "2026-12-01",
        "end_date": "2027-05-31",
    }
    data.update(overrides)
    # A fresh copy each time: a test that edits its payload never edits the shared constants.
    return copy.deepcopy(data)


def envelope(
    event_type: str,
    data: dict[str, Any],
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A platform event with a fresh id unless one is given, that happened at `occurred_at`
    (the business date a test chooses; now when it does not matter)."""
    return {
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "type": event_type,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "data": data,
    }


def event_id() -> str:
    return f"evt-{uuid.uuid4().hex}"


def document_events(
    siren: str, kind: DocumentKind, issued_on: date, document_id: str
) -> tuple[DocumentUploaded, DocumentReviewed]:
    """A provider's document uploaded, then accepted."""
    return (
        DocumentUploaded(
            document_id=document_id,
            provider_siren=siren,
            kind=kind,
            issued_on=issued_on,
            file_ref=f"s3://docs/{document_id}.pdf",
        ),
        DocumentReviewed(document_id=document_id, accepted=True),
    )
