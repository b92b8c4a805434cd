"""Business keys on a real, migrated PostgreSQL: duplicates are refused, upserts are no-ops,
invoice numbers are continuous."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine, session_factory
from db.migrate import upgrade_async
from db.models import (
    Approver,
    Base,
    Bpf,
    Client,
    ClientPayment,
    Contract,
    Cra,
    CraLine,
    CraLineKind,
    CreditNote,
    DocumentReview,
    DocumentStatus,
    EmailOutbox,
    Invoice,
    InvoiceKind,
    LegalDocument,
    Mission,
    MissionEvent,
    MissionTerms,
    Payout,
    ProcessedEvent,
    ProcessedEventStatus,
    Proposal,
    ProposalStatusHistory,
    Provider,
    PurchaseOrder,
    Rfp,
)
from db.sequences import CREDIT_NOTE_SERIES, next_number
from schemas.enums import (
    CraStatus,
    DocumentKind,
    InvoiceStatus,
    LegalForm,
    MissionStage,
    OutboxStatus,
    PaymentOffer,
    PayoutStatus,
    ProposalStatus,
)

PROVIDER = "732829320"
CLIENT_SIREN = "552100554"
MISSION = "P-1"
AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(fresh_database)
    engine = create_engine(fresh_database, pool_size=5)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _insert(engine: AsyncEngine, model: type[Base], **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.insert(model).values(**values))


SEED_MONTHS = ("2026-11", "2026-12", "2027-01", "2027-02")


async def _seed_mission(engine: AsyncEngine) -> dict[str, int]:
    """Parties, proposal, mission, a document, validated CRAs for `SEED_MONTHS` and an
    invoice for each of the first two months; returns {month: invoice id}."""
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(Client).values(client_id="C-1", name="Acme", siren=CLIENT_SIREN)
        )
        await connection.execute(
            sa.insert(Approver).values(approver_id="A-1", client_id="C-1", email="a@acme.fr")
        )
        await connection.execute(
            sa.insert(Provider).values(
                siren=PROVIDER,
                name="Dev SASU",
                email="dev@example.fr",
                country="FR",
                legal_form=LegalForm.COMPANY,
            )
        )
        await connection.execute(sa.insert(Rfp).values(rfp_id="RFP-1", client_id="C-1"))
        await connection.execute(
            sa.insert(Proposal).values(
                proposal_id=MISSION,
                rfp_id="RFP-1",
                provider_siren=PROVIDER,
                client_id="C-1",
                tjm=Decimal("650.00"),
                start_date=date(2026, 11, 2),
                end_date=date(2027, 4, 30),
                status=ProposalStatus.RETAINED,
            )
        )
        await connection.execute(
            sa.insert(Mission).values(
                mission_id=MISSION,
                client_id="C-1",
                provider_siren=PROVIDER,
                stage=MissionStage.IN_PROGRESS,
                payment_offer=PaymentOffer.EXPRESS,
                current_terms_version=1,
                start_date=date(2026, 11, 2),
                end_date=date(2027, 4, 30),
            )
        )
        for month in SEED_MONTHS:
            await connection.execute(
                sa.insert(Cra).values(
                    mission_id=MISSION,
                    month=month,
                    days=Decimal("20.5"),
                    status=CraStatus.VALIDATED,
                    validated_at=AT,
                    validated_on=AT.date(),
                    approver_id="A-1",
                )
            )
        await connection.execute(
            sa.insert(LegalDocument).values(
                document_id="D-1",
                provider_siren=PROVIDER,
                kind=DocumentKind.KBIS,
                issued_on=date(2026, 10, 1),
                expires_on=date(2026, 12, 30),
                file_ref="s3://docs/kbis.pdf",
                status=DocumentStatus.UNDER_REVIEW,
            )
        )
        invoices = {}
        for month in SEED_MONTHS[:2]:
            invoices[month] = (
                await connection.execute(
                    sa.insert(Invoice)
                    .values(**_invoice_values(f"F-SEED-{month}", month))
                    .returning(Invoice.id)
                )
            ).scalar_one()
    return invoices


def _invoice_values(number: str | None, month: str) -> dict[str, Any]:
    return {
        "issuer_siren": PROVIDER,
        "number": number,
        "mission_id": MISSION,
        "month": month,
        "kind": InvoiceKind.GENERATED,
        "status": InvoiceStatus.IN_PAYMENT,
        "issued_on": date(2026, 11, 27),
        "amount_excl_vat": Decimal("13325.00"),
        "vat_amount": Decimal("2665.00"),
        "amount_incl_vat": Decimal("15990.00"),
    }


@dataclass(frozen=True)
class KeyCase:
    """A first row, what differs in a second row that must be refused, and by which key."""

    model: type[Base]
    values: dict[str, Any]
    constraint: str
    second: dict[str, Any] = field(default_factory=dict)


def _cases(invoices: dict[str, int]) -> dict[str, KeyCase]:
    nov, dec = invoices["2026-11"], invoices["2026-12"]
    credit_note = {
        "issuer_siren": PROVIDER,
        "number": "A-2026-0001",
        "invoice_id": nov,
        "reason": "erreur de TJM",
        "issued_on": date(2026, 12, 1),
        "amount_excl_vat": Decimal("10.00"),
        "vat_amount": Decimal("2.00"),
        "amount_incl_vat": Decimal("12.00"),
    }
    payout = {
        "mission_id": MISSION,
        "month": "2026-11",
        "offer": PaymentOffer.EXPRESS,
        "amount": Decimal("15990.00"),
        "fee": Decimal("333.13"),
        "net_amount": Decimal("15656.87"),
        "due_on": date(2026, 12, 28),
        "status": PayoutStatus.SCHEDULED,
    }
    bpf = {
        "number": "BPF-1",
        "mission_id": MISSION,
        "month": "2026-11",
        "issued_on": date(2026, 11, 27),
        "amount_excl_vat": Decimal("13325.00"),
    }
    return {
        "provider siren": KeyCase(
            Provider,
            {
                "siren": "443061841",
                "name": "Other",
                "email": "o@example.fr",
                "country": "FR",
                "legal_form": LegalForm.AUTO_ENTREPRENEUR,
                "vat_franchise": True,
            },
            "pk_providers",
            {"name": "Other again"},
        ),
        "cra per mission and month": KeyCase(
            Cra,
            {"mission_id": MISSION, "month": "2027-03", "days": 1, "status": CraStatus.DRAFT},
            "uq_cras_mission_id_month",
            {"days": 2},
        ),
        "cra line position": KeyCase(
            CraLine,
            {
                "cra_id": sa.select(Cra.id).where(Cra.month == "2026-11").scalar_subquery(),
                "position": 1,
                "kind": CraLineKind.DAYS,
                "label": "Jours",
                "amount": Decimal("13325.00"),
            },
            "uq_cra_lines_cra_id_position",
            {"kind": CraLineKind.EXPENSE, "label": "Train"},
        ),
        "terms version": KeyCase(
            MissionTerms,
            {
                "mission_id": MISSION,
                "version": 1,
                "tjm": Decimal("650.00"),
                "start_date": date(2026, 11, 2),
                "end_date": date(2027, 4, 30),
            },
            "uq_mission_terms_mission_id_version",
            {"tjm": Decimal("700.00")},
        ),
        "contract version": KeyCase(
            Contract,
            {
                "mission_id": MISSION,
                "version": 1,
                "signed_on": date(2026, 10, 20),
                "payment_offer": PaymentOffer.EXPRESS,
                "special_conditions_ref": "cp-1.pdf",
            },
            "uq_contracts_mission_id_version",
            {"payment_offer": PaymentOffer.BASIC},
        ),
        "purchase order": KeyCase(
            PurchaseOrder,
            {"mission_id": MISSION, "po_number": "PO-7"},
            "uq_purchase_orders_mission_id_po_number",
        ),
        "proposal status history": KeyCase(
            ProposalStatusHistory,
            {"proposal_id": MISSION, "status": ProposalStatus.READ, "at": AT},
            "uq_proposal_status_history_proposal_id_status_at",
            {"detail": "again"},
        ),
        "document review": KeyCase(
            DocumentReview,
            {"document_id": "D-1", "accepted": True, "reviewed_at": AT},
            "uq_document_reviews_document_id_reviewed_at",
        ),
        "bpf number": KeyCase(Bpf, bpf, "uq_bpfs_number", {"month": "2026-12"}),
        "bpf per cra": KeyCase(Bpf, bpf, "uq_bpfs_mission_id_month", {"number": "BPF-2"}),
        "invoice number per issuer": KeyCase(
            Invoice,
            _invoice_values("F-2026-0001", "2027-01"),
            "uq_invoices_issuer_siren_number",
            {"month": "2027-02"},
        ),
        "invoice per cra": KeyCase(
            Invoice,
            _invoice_values("F-2026-0001", "2027-01"),
            "uq_invoices_mission_id_month",
            {"number": "F-2026-0002"},
        ),
        "credit note number": KeyCase(
            CreditNote, credit_note, "uq_credit_notes_issuer_siren_number", {"invoice_id": dec}
        ),
        "credit note per invoice": KeyCase(
            CreditNote, credit_note, "uq_credit_notes_invoice_id", {"number": "A-2026-0002"}
        ),
        "client payment per event": KeyCase(
            ClientPayment,
            {
                "event_id": "evt_1",
                "invoice_id": nov,
                "amount": Decimal("100.00"),
                "paid_on": date(2027, 1, 5),
            },
            "uq_client_payments_event_id",
        ),
        "payout per cra": KeyCase(
            Payout, payout, "uq_payouts_mission_id_month", {"invoice_id": nov}
        ),
        "payout per invoice": KeyCase(
            Payout,
            {**payout, "invoice_id": nov},
            "uq_payouts_invoice_id",
            {"month": "2026-12"},
        ),
        "timeline idempotency key": KeyCase(
            MissionEvent,
            {
                "idempotency_key": "cra.validated:P-1:2026-11",
                "mission_id": MISSION,
                "kind": "cra.validated",
                "at": AT,
            },
            "uq_mission_events_idempotency_key",
            {"data": {"retry": True}},
        ),
        "outbox key": KeyCase(
            EmailOutbox,
            {
                "outbox_key": "cra.validated:P-1:2026-11:provider",
                "recipients": ["dev@example.fr"],
                "subject": "CRA validé",
                "body_text": "Bonjour",
                "template": "cra_validated",
            },
            "uq_email_outbox_outbox_key",
            {"subject": "Autre"},
        ),
        "platform event id": KeyCase(
            ProcessedEvent,
            {
                "event_id": "evt_42",
                "type": "cra.validated",
                "payload_sha256": "0" * 64,
                "status": ProcessedEventStatus.PROCESSING,
            },
            "pk_processed_events",
            {"payload_sha256": "1" * 64},
        ),
    }


@pytest.mark.parametrize("case", list(_cases({"2026-11": 0, "2026-12": 0})))
async def test_business_key_rejects_a_duplicate(engine: AsyncEngine, case: str) -> None:
    key = _cases(await _seed_mission(engine))[case]
    await _insert(engine, key.model, **key.values)
    with pytest.raises(IntegrityError) as raised:
        await _insert(engine, key.model, **{**key.values, **key.second})
    assert getattr(raised.value.orig, "diag", None) is not None
    assert raised.value.orig.diag.constraint_name == key.constraint  # type: ignore[union-attr]


async def test_payout_upsert_on_the_cra_key_is_a_no_op(engine: AsyncEngine) -> None:
    invoice_id = (await _seed_mission(engine))["2026-11"]
    payout = {
        "mission_id": MISSION,
        "month": "2026-11",
        "invoice_id": invoice_id,
        "offer": PaymentOffer.BASIC,
        "amount": Decimal("15990.00"),
        "net_amount": Decimal("15990.00"),
        "status": PayoutStatus.SCHEDULED,
    }
    await _insert(engine, Payout, **payout)
    async with engine.begin() as connection:
        inserted = await connection.execute(
            insert(Payout).values(**payout).on_conflict_do_nothing().returning(Payout.id)
        )
        assert inserted.first() is None


async def test_no_invoice_and_no_payout_below_zero(engine: AsyncEngine) -> None:
    """Issue 11 point 2: what a month cannot absorb is carried over, never stored negative."""
    await _seed_mission(engine)
    negative = {
        **_invoice_values("F-2026-0009", "2026-12"),
        "amount_excl_vat": Decimal("-1300.00"),
        "vat_amount": Decimal("-260.00"),
        "amount_incl_vat": Decimal("-1560.00"),
    }
    with pytest.raises(IntegrityError, match="ck_invoices_not_negative"):
        await _insert(engine, Invoice, **negative)
    payout = {
        "mission_id": MISSION,
        "month": "2026-12",
        "offer": PaymentOffer.FLASH,
        "amount": Decimal("0.00"),
        "fee": Decimal("48.75"),
        "net_amount": Decimal("-48.75"),
        "status": PayoutStatus.SCHEDULED,
    }
    with pytest.raises(IntegrityError, match="ck_payouts_amounts"):
        await _insert(engine, Payout, **payout)
    await _insert(
        engine,
        Payout,
        **{**payout, "net_amount": Decimal("0.00"), "fee_carried_out": Decimal("48.75")},
    )


async def test_invoices_awaiting_import_have_no_number_yet(engine: AsyncEngine) -> None:
    """NULL numbers do not collide: several months can await the provider's import."""
    await _seed_mission(engine)
    for month in SEED_MONTHS[2:]:
        await _insert(
            engine,
            Invoice,
            issuer_siren=PROVIDER,
            mission_id=MISSION,
            month=month,
            kind=InvoiceKind.IMPORTED,
            status=InvoiceStatus.AWAITING_IMPORT,
        )
    async with engine.connect() as connection:
        count = await connection.scalar(sa.select(sa.func.count()).select_from(Invoice))
    assert count == 4


async def test_outbox_insert_on_conflict_do_nothing_is_a_no_op(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)

    def statement(subject: str) -> Any:
        return (
            insert(EmailOutbox)
            .values(
                outbox_key="proposal.submitted:P-1:provider",
                mission_id="P-1",
                recipients=["dev@example.fr"],
                subject=subject,
                body_text="Votre proposition a bien été envoyée.",
                template="proposal_acknowledged",
            )
            .on_conflict_do_nothing(index_elements=[EmailOutbox.outbox_key])
            .returning(EmailOutbox.id)
        )

    async with sessions.begin() as session:
        first = (await session.execute(statement("Proposition envoyée"))).scalar_one_or_none()
    async with sessions.begin() as session:
        second = (await session.execute(statement("Autre sujet"))).scalar_one_or_none()

    assert first is not None
    assert second is None
    async with sessions() as session:
        rows = (await session.execute(sa.select(EmailOutbox))).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert row.subject == "Proposition envoyée"
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 0
    assert row.recipients == ["dev@example.fr"]
    assert row.created_at.tzinfo is not None


async def test_status_columns_refuse_unknown_values(engine: AsyncEngine) -> None:
    await _seed_mission(engine)
    async with engine.connect() as connection:
        with pytest.raises(IntegrityError, match="ck_missions_stage"):
            await connection.execute(
                sa.text("UPDATE missions SET stage = 'on_hold' WHERE mission_id = :m"),
                {"m": MISSION},
            )


async def test_money_dates_and_enums_round_trip(engine: AsyncEngine) -> None:
    await _seed_mission(engine)
    async with session_factory(engine)() as session:
        mission = await session.get(Mission, MISSION)
        cra = (await session.execute(sa.select(Cra).where(Cra.month == "2026-11"))).scalar_one()
        proposal = await session.get(Proposal, MISSION)
    assert mission is not None and proposal is not None
    assert mission.stage is MissionStage.IN_PROGRESS
    assert mission.payment_offer is PaymentOffer.EXPRESS
    assert proposal.tjm == Decimal("650.00") and isinstance(proposal.tjm, Decimal)
    assert cra.days == Decimal("20.5")
    assert cra.validated_at == AT
    assert cra.validated_on == date(2026, 11, 27)


async def test_invoice_numbers_are_continuous_per_issuer(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        first = [await next_number(session, PROVIDER) for _ in range(3)]
        other_issuer = await next_number(session, "552100554")
        credit_note = await next_number(session, PROVIDER, CREDIT_NOTE_SERIES)
    assert first == [1, 2, 3]
    assert other_issuer == 1
    assert credit_note == 1

    # A rolled-back invoice does not burn its number.
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            assert await next_number(session, PROVIDER) == 4
            raise RuntimeError("the invoice could not be written")
    async with sessions.begin() as session:
        assert await next_number(session, PROVIDER) == 4


async def test_concurrent_invoice_numbering_has_no_gaps_or_duplicates(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)

    async def allocate() -> int:
        async with sessions.begin() as session:
            number = await next_number(session, PROVIDER)
            await asyncio.sleep(0.01)  # hold the row lock while "writing the invoice"
            return number

    numbers = await asyncio.gather(*(allocate() for _ in range(8)))
    assert sorted(numbers) == list(range(1, 9))


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("providers", ("siren",)),
        ("clients", ("client_id",)),
        ("approvers", ("approver_id",)),
        ("rfps", ("rfp_id",)),
        ("proposals", ("proposal_id",)),
        ("missions", ("mission_id",)),
        ("legal_documents", ("document_id",)),
        ("processed_events", ("event_id",)),
        ("invoice_number_sequences", ("issuer_siren", "series")),
        ("cras", ("mission_id", "month")),
        ("cra_lines", ("cra_id", "position")),
        ("bpfs", ("number",)),
        ("bpfs", ("mission_id", "month")),
        ("invoices", ("issuer_siren", "number")),
        ("invoices", ("mission_id", "month")),
        ("credit_notes", ("issuer_siren", "number")),
        ("credit_notes", ("invoice_id",)),
        ("payouts", ("mission_id", "month")),
        ("payouts", ("invoice_id",)),
        ("mission_terms", ("mission_id", "version")),
        ("contracts", ("mission_id", "version")),
        ("purchase_orders", ("mission_id", "po_number")),
        ("client_payments", ("event_id",)),
        ("carried_balances", ("mission_id", "from_month", "kind")),
        ("email_outbox", ("outbox_key",)),
        ("mission_events", ("idempotency_key",)),
        ("document_reviews", ("document_id", "reviewed_at")),
        ("proposal_status_history", ("proposal_id", "status", "at")),
    ],
)
def test_every_business_key_is_declared(table: str, columns: tuple[str, ...]) -> None:
    declared = [
        tuple(column.name for column in constraint.columns)
        for constraint in Base.metadata.tables[table].constraints
        if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint)
    ]
    assert columns in declared
