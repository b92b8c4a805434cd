"""Ledger rows written straight into PostgreSQL, for tests of what reads the ledger (the ops
commands): a mission with its parties, a month's payout with its CRA, invoice and client
payments, a failed transition, an outbox e-mail. Every id is new (uuid), so tests sharing
the session's database never see each other's rows through their own filters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects.postgresql import insert as upsert

from db.models import (
    Client,
    ClientPayment,
    Cra,
    EmailOutbox,
    Invoice,
    InvoiceKind,
    Mission,
    MissionEvent,
    Payout,
    Proposal,
    Provider,
    Rfp,
)
from schemas.enums import (
    CraStatus,
    InvoiceStatus,
    LegalForm,
    MissionStage,
    OutboxStatus,
    PaymentOffer,
    PayoutStatus,
    ProposalStatus,
)
from tests.support.factories import new_siren

START = date(2026, 1, 5)
END = date(2026, 12, 31)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Party:
    client_id: str
    provider_siren: str


def parties(engine: Engine, *, client_id: str | None = None) -> Party:
    """A provider, and a client (`client_id`'s, written once)."""
    party = Party(client_id or new_id("C"), new_siren())
    with engine.begin() as conn:
        conn.execute(
            upsert(Client)
            .values(client_id=party.client_id, name="Acme Industries", siren="552100554")
            .on_conflict_do_nothing()
        )
        conn.execute(
            insert(Provider).values(
                siren=party.provider_siren,
                name=f"Provider {party.provider_siren}",
                email=f"{party.provider_siren}@provider.test",
                country="FR",
                legal_form=LegalForm.COMPANY,
            )
        )
    return party


def mission(
    engine: Engine, party: Party, *, stage: MissionStage, offer: PaymentOffer | None
) -> str:
    """A mission (its RFP and retained proposal) of `party`; its id."""
    mission_id = new_id("M")
    with engine.begin() as conn:
        conn.execute(insert(Rfp).values(rfp_id=f"RFP-{mission_id}", client_id=party.client_id))
        conn.execute(
            insert(Proposal).values(
                proposal_id=mission_id,
                rfp_id=f"RFP-{mission_id}",
                provider_siren=party.provider_siren,
                client_id=party.client_id,
                tjm=Decimal("650.00"),
                start_date=START,
                end_date=END,
                status=ProposalStatus.RETAINED,
            )
        )
        conn.execute(
            insert(Mission).values(
                mission_id=mission_id,
                client_id=party.client_id,
                provider_siren=party.provider_siren,
                stage=stage,
                payment_offer=offer,
                start_date=START,
                end_date=END,
            )
        )
    return mission_id


def payout(
    engine: Engine,
    mission_id: str,
    month: str,
    *,
    offer: PaymentOffer,
    status: PayoutStatus,
    due_on: date | None,
    invoice: InvoiceStatus | None = InvoiceStatus.IN_PAYMENT,
    blocked_reason: str | None = None,
    client_paid: Decimal | None = None,
    status_reason: str | None = None,
) -> str:
    """The month's validated CRA, its invoice of 1,200.00 incl. VAT (`invoice` None: none),
    a client payment of `client_paid`, and the payout (net 1,140.00, fee 60.00); the invoice
    number."""
    number = new_id("F")
    with engine.begin() as conn:
        conn.execute(
            insert(Cra).values(
                mission_id=mission_id, month=month, days=Decimal(2), status=CraStatus.VALIDATED
            )
        )
        invoice_id = None
        if invoice is not None:
            invoice_id = conn.execute(
                insert(Invoice)
                .values(
                    issuer_siren=conn.execute(
                        select(Mission.provider_siren).where(Mission.mission_id == mission_id)
                    ).scalar_one(),
                    number=number,
                    mission_id=mission_id,
                    month=month,
                    kind=InvoiceKind.GENERATED,
                    status=invoice,
                    amount_excl_vat=Decimal("1000.00"),
                    vat_amount=Decimal("200.00"),
                    amount_incl_vat=Decimal("1200.00"),
                    blocked_reason=blocked_reason,
                )
                .returning(Invoice.id)
            ).scalar_one()
        if client_paid is not None:
            assert invoice_id is not None, "a client pays an invoice"
            conn.execute(
                insert(ClientPayment).values(
                    event_id=new_id("E"),
                    invoice_id=invoice_id,
                    amount=client_paid,
                    paid_on=START,
                )
            )
        conn.execute(
            insert(Payout).values(
                mission_id=mission_id,
                month=month,
                invoice_id=invoice_id,
                offer=offer,
                amount=Decimal("1200.00"),
                fee=Decimal("60.00"),
                net_amount=Decimal("1140.00"),
                due_on=due_on,
                status=status,
                status_reason=status_reason,
                paid_at=datetime.now(UTC) if status is PayoutStatus.PAID else None,
            )
        )
    return number


def failed_transition(engine: Engine, mission_id: str, month: str, kind: str, reason: str) -> None:
    """The `transition.failed` row activities/missions.py writes for a refused payout
    transition (key `payout.<kind>:<mission>:<month>`)."""
    key = f"{kind}:{mission_id}:{month}"
    with engine.begin() as conn:
        conn.execute(
            insert(MissionEvent).values(
                idempotency_key=f"transition.failed:{key}",
                mission_id=mission_id,
                kind="transition.failed",
                at=datetime.now(UTC),
                data={"transition": kind, "key": key, "reason": reason},
            )
        )


def outbox_email(
    engine: Engine,
    *,
    status: OutboxStatus,
    last_error: str | None = None,
    attempts: int = 0,
    mission_id: str | None = None,
) -> tuple[str, str]:
    """An outbox e-mail to one recipient; its key and (unique) subject."""
    key = new_id("ops.test")
    subject = f"Ops test {key}"
    with engine.begin() as conn:
        conn.execute(
            insert(EmailOutbox).values(
                outbox_key=key,
                mission_id=mission_id,
                recipients=["ops-test@example.test"],
                subject=subject,
                body_text="Bonjour,\n",
                template="ops_test",
                status=status,
                attempts=attempts,
                last_error=last_error,
                sent_at=datetime.now(UTC) if status is OutboxStatus.SENT else None,
            )
        )
    return key, subject
