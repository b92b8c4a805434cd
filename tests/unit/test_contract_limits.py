"""Every limit of the event contract fits the column its field lands in (issue 12 point 2).

`LANDS_IN` says, field by field, which columns an event field is written to; the limits on
both sides are read from their metadata (the column's `String(n)`, `Numeric(p, s)` and
`CHECK (<column> > 0)`; the contract's answer through the gateway's parser), never restated
here. A value one past the column's limit is a 422 naming the field, the contract's own
largest value is accepted, and every stored field of every payload is classified, so a new
field cannot land in a column unchecked.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from db.models import Base
from schemas.events import PAYLOADS
from starter.gateway.events import InvalidEvent, parse_event
from tests.support.factories import envelope, proposal_submitted

PID = "P-limits-1"
BASE: dict[str, dict[str, Any]] = {
    "proposal.submitted": proposal_submitted(PID),
    "proposal.updated": {"proposal_id": PID, "tjm": "700.00"},
    "proposal.cancelled": {"proposal_id": PID, "reason": "Plus disponible"},
    "document.uploaded": {
        "document_id": "DOC-1",
        "provider_siren": "200780963",
        "kind": "kbis",
        "issued_on": "2026-11-02",
        "file_ref": "s3://docs/DOC-1.pdf",
    },
    "document.reviewed": {"document_id": "DOC-1", "accepted": False, "comment": "Illisible"},
    "purchase_order.confirmed": {"proposal_id": PID, "po_number": "PO-1"},
    "contract.signed": {
        "proposal_id": PID,
        "signed_on": "2026-11-02",
        "payment_offer": "flash",
        "special_conditions_ref": "CP-1",
    },
    "cra.submitted": {
        "mission_id": PID,
        "month": "2026-10",
        "days": "20",
        "expenses": [{"label": "Train", "amount": "80.00", "vat_rate": "10", "receipt_ref": "R-1"}],
        "overtime": [{"label": "Astreinte", "amount": "150.00"}],
        "corrections": [{"label": "Oubli", "amount": "-50.00", "corrects_month": "2026-09"}],
    },
    "cra.validated": {"mission_id": PID, "month": "2026-10", "approver_id": "APP-1"},
    "cra.rejected": {
        "mission_id": PID,
        "month": "2026-10",
        "approver_id": "APP-1",
        "comment": "Trop de jours",
    },
    "invoice.imported": {
        "mission_id": PID,
        "month": "2026-10",
        "number": "FAC-1",
        "issued_on": "2026-10-30",
        "amount_excl_vat": "13000.00",
        "vat_amount": "2600.00",
        "file_ref": "s3://invoices/FAC-1.pdf",
    },
    "invoice.cancelled": {"invoice_number": "F-200780963-000001", "reason": "Erreur"},
    "client_payment.received": {
        "invoice_number": "F-200780963-000001",
        "amount": "1000.00",
        "paid_on": "2026-11-02",
    },
    "renewal.requested": {"mission_id": PID, "new_end_date": "2027-12-31", "new_tjm": "700.00"},
    "mission.terminated": {"mission_id": PID, "end_date": "2027-01-31", "reason": "Budget"},
}

LANDS_IN: dict[tuple[str, str], tuple[str, ...]] = {
    ("proposal.submitted", "proposal_id"): ("proposals.proposal_id", "missions.mission_id"),
    ("proposal.submitted", "rfp_id"): ("rfps.rfp_id",),
    ("proposal.submitted", "client.id"): ("clients.client_id",),
    ("proposal.submitted", "client.name"): ("clients.name",),
    ("proposal.submitted", "client.approvers.0.id"): ("approvers.approver_id",),
    ("proposal.submitted", "client.approvers.0.email"): ("approvers.email",),
    ("proposal.submitted", "client.address.lines.0"): ("clients.address_lines",),
    ("proposal.submitted", "client.address.city"): ("clients.city",),
    ("proposal.submitted", "client.registration.form"): ("clients.registration_form",),
    ("proposal.submitted", "client.registration.share_capital"): ("clients.share_capital",),
    ("proposal.submitted", "client.registration.rcs_city"): ("clients.rcs_city",),
    ("proposal.submitted", "provider.name"): ("providers.name",),
    ("proposal.submitted", "provider.email"): ("providers.email",),
    ("proposal.submitted", "provider.address.lines.0"): ("providers.address_lines",),
    ("proposal.submitted", "provider.address.city"): ("providers.city",),
    ("proposal.submitted", "provider.registration.form"): ("providers.registration_form",),
    ("proposal.submitted", "provider.registration.share_capital"): ("providers.share_capital",),
    ("proposal.submitted", "provider.registration.rcs_city"): ("providers.rcs_city",),
    ("proposal.submitted", "tjm"): ("proposals.tjm", "mission_terms.tjm", "cra_lines.unit_price"),
    ("proposal.updated", "tjm"): ("proposals.tjm",),
    ("proposal.cancelled", "reason"): ("proposals.cancel_reason",),
    ("document.uploaded", "document_id"): ("legal_documents.document_id",),
    ("document.uploaded", "file_ref"): ("legal_documents.file_ref",),
    ("document.reviewed", "comment"): ("document_reviews.comment",),
    ("purchase_order.confirmed", "po_number"): ("purchase_orders.po_number",),
    ("contract.signed", "special_conditions_ref"): (
        "contracts.special_conditions_ref",
        "mission_terms.special_conditions_ref",
    ),
    ("cra.submitted", "mission_id"): ("cras.mission_id",),
    ("cra.submitted", "expenses.0.label"): ("cra_lines.label",),
    ("cra.submitted", "expenses.0.amount"): ("cra_lines.amount",),
    ("cra.submitted", "expenses.0.receipt_ref"): ("cra_lines.receipt_ref",),
    ("cra.submitted", "overtime.0.label"): ("cra_lines.label",),
    ("cra.submitted", "overtime.0.amount"): ("cra_lines.amount",),
    ("cra.submitted", "corrections.0.label"): ("cra_lines.label",),
    ("cra.submitted", "corrections.0.amount"): ("cra_lines.amount",),
    ("cra.validated", "approver_id"): ("cras.approver_id",),
    ("cra.rejected", "comment"): ("cras.rejection_comment",),
    ("invoice.imported", "number"): ("invoices.number",),
    ("invoice.imported", "amount_excl_vat"): ("invoices.amount_excl_vat",),
    ("invoice.imported", "vat_amount"): ("invoices.vat_amount",),
    ("invoice.imported", "file_ref"): ("invoices.file_ref",),
    ("invoice.cancelled", "invoice_number"): ("invoices.number",),
    ("invoice.cancelled", "reason"): ("credit_notes.reason",),
    ("client_payment.received", "invoice_number"): ("invoices.number",),
    ("client_payment.received", "amount"): ("client_payments.amount",),
    ("renewal.requested", "new_tjm"): ("mission_terms.tjm",),
    ("mission.terminated", "reason"): ("missions.end_reason",),
}
"""(event type, field path in `data`) → the columns the value is written to (or looked up in)."""

BOUNDED_BY_PATTERN = {
    "siren",
    "provider_siren",
    "country",
    "postal_code",
    "vat_number",
    "month",
    "corrects_month",
    "vat_rate",
    "days",
}
"""Fields whose pattern or range alone fits their column (`VARCHAR(9)` for 9 digits…)."""

NOT_STORED = {
    # Decisions, dates and enums: booleans, dates, statuses (CHECKed VARCHAR(32) enums).
    "interesting", "accepted", "vat_franchise", "legal_form", "kind", "payment_offer",
    "invoicing", "by", "at", "issued_on", "expires_on", "signed_on", "start_date",
    "end_date", "new_end_date", "paid_on", "occurred_at",
    # Routing references, looked up but not written by their event.
    "proposal_id", "rfp_id", "mission_id", "document_id", "approver_id", "favourited_by",
    "reason",  # renewal.declined's: the timeline's JSON detail only
}  # fmt: skip
"""Fields that land in no length- or precision-bounded column of their own."""


def _column(path: str) -> sa.Column[Any]:
    table, column = path.split(".")
    return Base.metadata.tables[table].c[column]


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(data))
    node: Any = copy
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return copy


def _refusal(event_type: str, data: dict[str, Any]) -> dict[str, str] | None:
    """The parser's 422 {path: message}, or None when the event is accepted."""
    try:
        parse_event(json.dumps(envelope(event_type, data)).encode())
    except InvalidEvent as refused:
        return {str(error["loc"]): str(error["msg"]) for error in refused.errors}
    return None


def _text(length: int, field: str) -> str:
    """A valid value of `length` characters for `field` (an address for `email`)."""
    if field.endswith("email"):
        return "a" * max(length - len("@acme.fr"), 0) + "@acme.fr"
    return "A" * length


def _cases() -> list[tuple[str, str, str]]:
    return [(t, f, c) for (t, f), columns in LANDS_IN.items() for c in columns]


@pytest.mark.parametrize(("event_type", "field", "column_path"), _cases())
def test_one_past_the_column_is_a_422_naming_the_field(
    event_type: str, field: str, column_path: str
) -> None:
    column = _column(column_path)
    base = BASE[event_type]
    assert _refusal(event_type, base) is None, f"the base {event_type} is refused"
    loc = f"data.{field}"
    kind = column.type.item_type if isinstance(column.type, sa.ARRAY) else column.type
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Integer):
        assert kind.precision is not None and kind.scale is not None
        beyond = Decimal(10) ** (kind.precision - kind.scale)
        refused = _refusal(event_type, _set(base, field, f"{beyond:f}.00"))
        assert refused is not None and loc in refused, (column_path, refused)
        finer = f"1.{'0' * kind.scale}1"
        refused = _refusal(event_type, _set(base, field, finer))
        assert refused is not None and loc in refused, (column_path, refused)
        checks = [
            str(c.sqltext)
            for c in column.table.constraints
            if isinstance(c, sa.CheckConstraint)
            and re.search(rf"\b{column.name} > 0\b", str(c.sqltext))
        ]
        if checks:  # CHECK (<column> > 0): zero is refused at the edge, not by the ledger
            refused = _refusal(event_type, _set(base, field, "0.00"))
            assert refused is not None, f"{loc} = 0.00 is accepted, {column_path} CHECKs > 0"
    elif isinstance(kind, sa.String) and kind.length is not None:
        refused = _refusal(event_type, _set(base, field, _text(kind.length + 1, field)))
        assert refused is not None and loc in refused, (column_path, refused)
        assert "at most" in refused[loc] or "match" in refused[loc], refused[loc]
    else:
        assert isinstance(kind, sa.Text), f"{column_path} is {kind!r}: not checked here"


@pytest.mark.parametrize(("event_type", "field"), sorted(LANDS_IN))
def test_the_contracts_largest_value_is_accepted_and_fits(event_type: str, field: str) -> None:
    """The longest text, or the largest amount, the contract accepts fits every column."""
    base = BASE[event_type]
    columns = [_column(path) for path in LANDS_IN[(event_type, field)]]
    kinds = [c.type.item_type if isinstance(c.type, sa.ARRAY) else c.type for c in columns]
    if any(isinstance(k, sa.Numeric) for k in kinds):
        largest = Decimal("999999999.99")
        assert _refusal(event_type, _set(base, field, f"{largest}")) is None
        refused = _refusal(event_type, _set(base, field, f"{largest + Decimal('0.01')}"))
        assert refused is not None and f"data.{field}" in refused
        for k in kinds:
            assert isinstance(k, sa.Numeric) and k.precision is not None and k.scale is not None
            assert largest < Decimal(10) ** (k.precision - k.scale) and k.scale >= 2
        return
    longest = 0
    shortest = len(_text(0, field)) + 1
    for length in range(shortest, 2002):  # the contract's own limit, found from its answer
        if _refusal(event_type, _set(base, field, _text(length, field))) is not None:
            break
        longest = length
    assert longest >= shortest, f"{event_type} data.{field} accepts no value"
    for column, k in zip(columns, kinds, strict=True):
        if isinstance(k, sa.String) and k.length is not None:
            assert longest <= k.length, f"data.{field} accepts {longest}, {column} holds {k.length}"


def _leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field path of `model`, nested models and list items included (`.0.`)."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        nested = [
            arg
            for arg in (getattr(annotation, "__args__", None) or (annotation,))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        inner = [
            arg
            for arg in getattr(annotation, "__args__", ()) or ()
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if nested:
            for sub in nested:
                paths |= _leaves(sub, f"{prefix}{name}.")
        elif getattr(annotation, "__origin__", None) is list and inner:
            for sub in inner:
                paths |= _leaves(sub, f"{prefix}{name}.0.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


def test_every_field_of_every_payload_is_classified() -> None:
    """A field lands in a checked column, is bounded by its pattern, or is stored unbounded
    (TEXT, JSON) or not at all: a new field must be put in one of them."""
    mapped = {(t, f.replace(".0.", ".").removesuffix(".0")) for t, f in LANDS_IN}
    unclassified = []
    for event_type, model in PAYLOADS.items():
        for path in _leaves(model):
            leaf = path.rsplit(".", 1)[-1]
            flat = path.replace(".0.", ".")
            if (event_type, flat) in mapped or leaf in BOUNDED_BY_PATTERN | NOT_STORED:
                continue
            unclassified.append(f"{event_type} data.{path}")
    assert not unclassified, f"fields that land in no checked column: {unclassified}"
