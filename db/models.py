"""SQLAlchemy models of the whole mission lifecycle (PostgreSQL).

Conventions (DESIGN.md):

- Entities the platform identifies (clients, approvers, providers, RFPs, proposals, missions,
  legal documents, platform events) use the platform's identifier as their primary key, so an
  activity can write a row and its references from the event alone, without a lookup.
  Entities the orchestrator creates (CRAs, invoices, payouts, outbox rows…) have a surrogate
  `id` and a UNIQUE constraint on their business key: activities write them with
  `INSERT … ON CONFLICT (<business key>) DO NOTHING/UPDATE`, so a retry never writes twice.
- Money is `Numeric(12, 2)` ↔ `Decimal`; business dates are `Date`; instants are
  `timestamptz` ↔ aware `datetime`.
- Statuses and kinds are the `StrEnum`s of `schemas/enums.py`, stored as `VARCHAR(32)` with a
  CHECK constraint (no native PostgreSQL enum type: adding a value is a one-line migration).
- Every constraint and index is named by `NAMING_CONVENTION`, so migrations are deterministic.
- The audit timeline (`mission_events`) and the email outbox refer to a mission by id without
  a foreign key: they record what happened, and must never fail because of write ordering.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    VatRegime,
)
from schemas.limits import (
    EMAIL_LENGTH,
    EVENT_ID_LENGTH,
    ID_LENGTH,
    KEY_LENGTH,
    MONEY_PRECISION,
    MONEY_SCALE,
    MONTH_LENGTH,
    REFERENCE_LENGTH,
)

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = sa.Numeric(MONEY_PRECISION, MONEY_SCALE)
ENUM_LENGTH = 32
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])(-p[2-9])?$"
"""A month, or the key of a billing period of a month split by a change of terms
(`YYYY-MM-p2`, domain.cra.period_key): the `month` columns key a CRA, its BPF, invoice,
files and payout per (mission, period) — the first period keeps the month's key."""
SIREN_PATTERN = r"^[0-9]{9}$"


# Statuses and kinds that only the database needs so far (not part of the event contract).


class DocumentStatus(enum.StrEnum):
    """Review status of a provider's legal document."""

    UNDER_REVIEW = "under_review"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


class CraLineKind(enum.StrEnum):
    DAYS = "days"
    EXPENSE = "expense"
    OVERTIME = "overtime"
    CORRECTION = "correction"


class InvoiceKind(enum.StrEnum):
    GENERATED = "generated"  # self-billing: the platform issues it on the provider's behalf
    IMPORTED = "imported"  # manual import by the provider


class ProcessedEventStatus(enum.StrEnum):
    """The gateway's idempotency record of a platform event."""

    PROCESSING = "processing"
    ACCEPTED = "accepted"
    FAILED = "failed"


E = TypeVar("E", bound=enum.Enum)


def _enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_cls]


def str_enum(enum_cls: type[E], name: str) -> sa.Enum:
    """A `StrEnum` stored as its value in a VARCHAR with a CHECK `ck_<table>_<name>`."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        values_callable=_enum_values,
        validate_strings=True,
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's declarative configuration
        Decimal: MONEY,
        datetime: sa.DateTime(timezone=True),
        date: sa.Date(),
        dict[str, Any]: JSONB(),
    }


# --- Parties --------------------------------------------------------------------------------


def _address_complete() -> sa.CheckConstraint:
    """A postal address is all there or not at all (parties recorded before revision 0002)."""
    return sa.CheckConstraint(
        sa.text(
            "(address_lines IS NULL) = (postal_code IS NULL)"
            " AND (postal_code IS NULL) = (city IS NULL)"
            " AND (city IS NULL) = (address_country IS NULL)"
        ),
        name="address",
    )


class PostalAddressColumns:
    """A party's postal address (`schemas.events.PostalAddress`), printed on its invoices:
    NULL for parties recorded before the contract carried it."""

    address_lines: Mapped[list[str] | None] = mapped_column(ARRAY(sa.Text))
    postal_code: Mapped[str | None] = mapped_column(sa.String(16))
    city: Mapped[str | None] = mapped_column(sa.Text)
    address_country: Mapped[str | None] = mapped_column(sa.String(2))


def _registration_complete() -> sa.CheckConstraint:
    """A company's registration is all there or not at all (revision 0004)."""
    return sa.CheckConstraint(
        sa.text(
            "(registration_form IS NULL) = (share_capital IS NULL)"
            " AND (share_capital IS NULL) = (rcs_city IS NULL)"
        ),
        name="registration",
    )


class RegistrationColumns:
    """A company's legal form, share capital and RCS city (`schemas.events.Registration`),
    printed on its invoices: NULL for an individual entrepreneur, a company abroad without
    them, or parties recorded before revision 0004."""

    registration_form: Mapped[str | None] = mapped_column(sa.String(40))
    share_capital: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    rcs_city: Mapped[str | None] = mapped_column(sa.String(100))


class Client(PostalAddressColumns, RegistrationColumns, Base):
    """The buying company, as the platform knows it."""

    __tablename__ = "clients"
    __table_args__ = (
        sa.CheckConstraint(sa.text(f"siren ~ '{SIREN_PATTERN}'"), name="siren"),
        _address_complete(),
        _registration_complete(),
    )

    client_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    siren: Mapped[str] = mapped_column(sa.String(9), index=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Approver(Base):
    """A client's approver (responsable opérationnel): validates CRAs and renewals."""

    __tablename__ = "approvers"

    approver_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("clients.client_id"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(EMAIL_LENGTH))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Provider(PostalAddressColumns, RegistrationColumns, Base):
    """The provider company, identified by its SIREN."""

    __tablename__ = "providers"
    __table_args__ = (
        sa.CheckConstraint(sa.text(f"siren ~ '{SIREN_PATTERN}'"), name="siren"),
        sa.CheckConstraint(sa.text("country ~ '^[A-Z]{2}$'"), name="country"),
        _address_complete(),
        _registration_complete(),
    )

    siren: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_LENGTH))
    country: Mapped[str] = mapped_column(sa.String(2))
    legal_form: Mapped[LegalForm] = mapped_column(str_enum(LegalForm, "legal_form"))
    vat_franchise: Mapped[bool] = mapped_column(server_default=sa.false())
    vat_number: Mapped[str | None] = mapped_column(sa.String(20))
    """Compact intra-community VAT number (domain.vat.provider_vat_number); NULL under the
    franchise or outside the EU without one."""
    iban: Mapped[str | None] = mapped_column(sa.String(34))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


# --- Calls for tenders and proposals ---------------------------------------------------------


class Rfp(Base):
    """A client's call for tenders (AO)."""

    __tablename__ = "rfps"

    rfp_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("clients.client_id"), index=True
    )
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()


class Proposal(Base):
    """A provider's answer to an RFP; its id is the business key (and the mission id)."""

    __tablename__ = "proposals"
    __table_args__ = (
        sa.CheckConstraint(sa.text("end_date >= start_date"), name="dates"),
        sa.CheckConstraint(sa.text("tjm > 0"), name="tjm"),
    )

    proposal_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    rfp_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("rfps.rfp_id"), index=True
    )
    provider_siren: Mapped[str] = mapped_column(
        sa.String(9), sa.ForeignKey("providers.siren"), index=True
    )
    client_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("clients.client_id"), index=True
    )
    tjm: Mapped[Decimal]
    start_date: Mapped[date]
    end_date: Mapped[date]
    status: Mapped[ProposalStatus] = mapped_column(str_enum(ProposalStatus, "status"))
    qualification_meeting_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ProposalStatusHistory(Base):
    """Every status a proposal went through; `at` comes from the workflow, so a retry is a
    conflict on (proposal_id, status, at)."""

    __tablename__ = "proposal_status_history"
    __table_args__ = (sa.UniqueConstraint("proposal_id", "status", "at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("proposals.proposal_id", ondelete="CASCADE")
    )
    status: Mapped[ProposalStatus] = mapped_column(str_enum(ProposalStatus, "status"))
    at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(sa.Text)


# --- Missions, terms, contracts -------------------------------------------------------------


class Mission(Base):
    """One mission per retained proposal: `mission_id` is the proposal id."""

    __tablename__ = "missions"

    mission_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("proposals.proposal_id"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("clients.client_id"), index=True
    )
    provider_siren: Mapped[str] = mapped_column(
        sa.String(9), sa.ForeignKey("providers.siren"), index=True
    )
    stage: Mapped[MissionStage] = mapped_column(str_enum(MissionStage, "stage"), index=True)
    current_terms_version: Mapped[int | None]
    payment_offer: Mapped[PaymentOffer | None] = mapped_column(
        str_enum(PaymentOffer, "payment_offer")
    )
    start_date: Mapped[date]
    end_date: Mapped[date]
    ended_on: Mapped[date | None]
    end_reason: Mapped[str | None] = mapped_column(sa.Text)
    started_on: Mapped[date | None]
    """The day it actually started (NULL until then, and for missions started before 0011)."""
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class MissionTerms(Base):
    """A version of a mission's terms: version 1 from the proposal, one more per renewal."""

    __tablename__ = "mission_terms"
    __table_args__ = (
        sa.UniqueConstraint("mission_id", "version"),
        sa.CheckConstraint(sa.text("version >= 1"), name="version"),
        sa.CheckConstraint(sa.text("end_date >= start_date"), name="dates"),
        sa.CheckConstraint(sa.text("tjm > 0"), name="tjm"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("missions.mission_id")
    )
    version: Mapped[int]
    tjm: Mapped[Decimal]
    start_date: Mapped[date]
    end_date: Mapped[date]
    payment_offer: Mapped[PaymentOffer | None] = mapped_column(
        str_enum(PaymentOffer, "payment_offer")
    )
    special_conditions_ref: Mapped[str | None] = mapped_column(sa.Text)
    signed_on: Mapped[date | None]
    created_at: Mapped[datetime] = _created_at()


class PurchaseOrder(Base):
    """The client's purchase order: its side of legal verification."""

    __tablename__ = "purchase_orders"
    __table_args__ = (sa.UniqueConstraint("mission_id", "po_number"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("missions.mission_id")
    )
    po_number: Mapped[str] = mapped_column(sa.String(REFERENCE_LENGTH))
    confirmed_at: Mapped[datetime] = _created_at()


class Contract(Base):
    """The special conditions the provider signed, one per terms version."""

    __tablename__ = "contracts"
    __table_args__ = (sa.UniqueConstraint("mission_id", "version"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("missions.mission_id")
    )
    version: Mapped[int]
    signed_on: Mapped[date]
    payment_offer: Mapped[PaymentOffer] = mapped_column(str_enum(PaymentOffer, "payment_offer"))
    special_conditions_ref: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created_at()


# --- Legal documents ------------------------------------------------------------------------


class LegalDocument(Base):
    """A provider's legal document (D8222-5, D8254-2), identified by the platform's id."""

    __tablename__ = "legal_documents"
    __table_args__ = (sa.Index(None, "provider_siren", "kind"),)

    document_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    provider_siren: Mapped[str] = mapped_column(sa.String(9), sa.ForeignKey("providers.siren"))
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, "kind"))
    issued_on: Mapped[date]
    expires_on: Mapped[date]
    file_ref: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[DocumentStatus] = mapped_column(str_enum(DocumentStatus, "status"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class DocumentReview(Base):
    """A review of a document; a rejection carries the comment the provider sees."""

    __tablename__ = "document_reviews"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "reviewed_at"),
        sa.CheckConstraint(sa.text("accepted OR comment IS NOT NULL"), name="comment"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("legal_documents.document_id")
    )
    accepted: Mapped[bool]
    comment: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_at: Mapped[datetime]


# --- Monthly activity reports and billing vouchers ------------------------------------------


class Cra(Base):
    """The monthly activity report of a mission: one per (mission, 'YYYY-MM'), or per billing
    period of a month split by a change of terms ('YYYY-MM-p2', MONTH_PATTERN)."""

    __tablename__ = "cras"
    __table_args__ = (
        sa.UniqueConstraint("mission_id", "month"),
        sa.CheckConstraint(sa.text(f"month ~ '{MONTH_PATTERN}'"), name="month"),
        sa.CheckConstraint(sa.text("days >= 0 AND days <= 31"), name="days"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("missions.mission_id")
    )
    month: Mapped[str] = mapped_column(sa.String(MONTH_LENGTH))
    days: Mapped[Decimal] = mapped_column(sa.Numeric(4, 1))
    status: Mapped[CraStatus] = mapped_column(str_enum(CraStatus, "status"))
    terms_version: Mapped[int | None]
    submitted_at: Mapped[datetime | None]
    validated_at: Mapped[datetime | None]
    # The validation date in Europe/Paris: payout dates are counted from it.
    validated_on: Mapped[date | None]
    rejected_at: Mapped[datetime | None]
    rejection_comment: Mapped[str | None] = mapped_column(sa.Text)
    approver_id: Mapped[str | None] = mapped_column(
        sa.String(ID_LENGTH), sa.ForeignKey("approvers.approver_id")
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class CraLine(Base):
    """A line of a CRA: days worked, an expense, overtime/on-call, or a correction of a
    previous month (possibly negative)."""

    __tablename__ = "cra_lines"
    __table_args__ = (
        sa.UniqueConstraint("cra_id", "position"),
        sa.CheckConstraint(
            sa.text(f"corrects_month IS NULL OR corrects_month ~ '{MONTH_PATTERN}'"),
            name="corrects_month",
        ),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    cra_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("cras.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[CraLineKind] = mapped_column(str_enum(CraLineKind, "kind"))
    label: Mapped[str] = mapped_column(sa.Text)
    quantity: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    unit_price: Mapped[Decimal | None]
    amount: Mapped[Decimal]
    vat_rate: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    receipt_ref: Mapped[str | None] = mapped_column(sa.Text)
    corrects_month: Mapped[str | None] = mapped_column(sa.String(MONTH_LENGTH))


class Bpf(Base):
    """Billing voucher (bon pour facturation), one per validated CRA."""

    __tablename__ = "bpfs"
    __table_args__ = (
        sa.UniqueConstraint("mission_id", "month"),
        sa.ForeignKeyConstraint(["mission_id", "month"], ["cras.mission_id", "cras.month"]),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(ID_LENGTH), unique=True)
    mission_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    month: Mapped[str] = mapped_column(sa.String(MONTH_LENGTH))
    issued_on: Mapped[date]
    amount_excl_vat: Mapped[Decimal]
    file_ref: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created_at()


# --- Invoices, credit notes, numbering ------------------------------------------------------


class InvoiceNumberSequence(Base):
    """Continuous numbering per issuer and series (e.g. "invoice-2026", "credit_note-2026").

    Allocate with `db.sequences.next_number` inside the transaction that writes the invoice:
    the counter row stays locked until that transaction ends, so numbers have no gaps.
    """

    __tablename__ = "invoice_number_sequences"
    __table_args__ = (sa.CheckConstraint(sa.text("last_number >= 0"), name="last_number"),)

    issuer_siren: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    series: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    last_number: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = _updated_at()


class Invoice(Base):
    """The provider's invoice for a validated CRA: generated (self-billing) or imported.

    A manual-import invoice may exist before its number is known (status awaiting_import);
    PostgreSQL lets several NULL numbers coexist under the (issuer_siren, number) key.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("issuer_siren", "number"),
        sa.UniqueConstraint("mission_id", "month"),
        sa.ForeignKeyConstraint(["mission_id", "month"], ["cras.mission_id", "cras.month"]),
        sa.CheckConstraint(
            sa.text("amount_incl_vat = amount_excl_vat + vat_amount"), name="totals"
        ),
        # No negative invoice (domain.carry_over): what a month cannot absorb is carried over.
        sa.CheckConstraint(
            sa.text("amount_excl_vat >= 0 AND vat_amount >= 0 AND amount_incl_vat >= 0"),
            name="not_negative",
        ),
        sa.CheckConstraint(
            sa.text("service_end IS NULL OR service_end >= service_start"),
            name="service_period",
        ),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    issuer_siren: Mapped[str] = mapped_column(sa.String(9), sa.ForeignKey("providers.siren"))
    number: Mapped[str | None] = mapped_column(sa.String(REFERENCE_LENGTH), index=True)
    mission_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    month: Mapped[str] = mapped_column(sa.String(MONTH_LENGTH))
    kind: Mapped[InvoiceKind] = mapped_column(str_enum(InvoiceKind, "kind"))
    status: Mapped[InvoiceStatus] = mapped_column(str_enum(InvoiceStatus, "status"), index=True)
    issued_on: Mapped[date | None]
    service_start: Mapped[date | None]
    service_end: Mapped[date | None]
    amount_excl_vat: Mapped[Decimal | None]
    vat_amount: Mapped[Decimal | None]
    amount_incl_vat: Mapped[Decimal | None]
    due_on: Mapped[date | None]
    vat_regime: Mapped[VatRegime] = mapped_column(
        str_enum(VatRegime, "vat_regime"), server_default=VatRegime.FRENCH_VAT.value
    )
    # e.g. "TVA non applicable, art. 293 B du CGI", "Autoliquidation : …"
    vat_mention: Mapped[str | None] = mapped_column(sa.Text)
    late_payment_rate: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 4))
    recovery_indemnity: Mapped[Decimal | None]
    pdf_ref: Mapped[str | None] = mapped_column(sa.Text)
    facturx_ref: Mapped[str | None] = mapped_column(sa.Text)
    file_ref: Mapped[str | None] = mapped_column(sa.Text)  # the imported file
    blocked_reason: Mapped[str | None] = mapped_column(sa.Text)
    cancelled_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class CreditNote(Base):
    """A credit note (avoir) cancelling an invoice."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        sa.UniqueConstraint("issuer_siren", "number"),
        sa.UniqueConstraint("invoice_id"),
        sa.CheckConstraint(
            sa.text("amount_incl_vat = amount_excl_vat + vat_amount"), name="totals"
        ),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    issuer_siren: Mapped[str] = mapped_column(sa.String(9), sa.ForeignKey("providers.siren"))
    number: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    invoice_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("invoices.id"))
    reason: Mapped[str] = mapped_column(sa.Text)
    issued_on: Mapped[date]
    amount_excl_vat: Mapped[Decimal]
    vat_amount: Mapped[Decimal]
    amount_incl_vat: Mapped[Decimal]
    pdf_ref: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created_at()


class BillingDocumentKind(enum.StrEnum):
    """The files a validated CRA issues."""

    BPF = "bpf"  # the billing voucher, PDF
    INVOICE = "invoice"  # the generated invoice: Factur-X (PDF/A-3 with its CII XML)
    CREDIT_NOTE = "credit_note"  # the credit note cancelling it, Factur-X too


class BillingDocument(Base):
    """A billing document's file as issued, kept in the database with the ledger it proves.

    Written in the transaction that numbers the invoice, or the credit note
    (`activities.billing_files`), once
    per (mission, month, kind): `INSERT … ON CONFLICT DO NOTHING`, never updated. `name` is
    the file name the API serves it under (`GET /missions/{id}/documents/{name}`).
    """

    __tablename__ = "billing_documents"
    __table_args__ = (
        sa.UniqueConstraint("mission_id", "month", "kind"),
        sa.UniqueConstraint("mission_id", "name"),
        sa.ForeignKeyConstraint(["mission_id", "month"], ["cras.mission_id", "cras.month"]),
        sa.CheckConstraint(sa.text("size = octet_length(content)"), name="size"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    month: Mapped[str] = mapped_column(sa.String(MONTH_LENGTH))
    kind: Mapped[BillingDocumentKind] = mapped_column(str_enum(BillingDocumentKind, "kind"))
    number: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    name: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    issued_on: Mapped[date]
    created_at: Mapped[datetime] = _created_at()


# --- Payments ---------------------------------------------------------------------------------


class ClientPayment(Base):
    """A payment by the client of an invoice, one per platform event."""

    __tablename__ = "client_payments"
    __table_args__ = (
        sa.CheckConstraint(sa.text("amount > 0"), name="amount"),
        sa.CheckConstraint(sa.text("penalties >= 0 AND indemnity >= 0"), name="late_fees"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(EVENT_ID_LENGTH), unique=True)
    invoice_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal]
    paid_on: Mapped[date]
    days_late: Mapped[int] = mapped_column(server_default=sa.text("0"))
    penalties: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    indemnity: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    received_at: Mapped[datetime] = _created_at()


class Payout(Base):
    """What the platform pays the provider for a month: one per CRA, hence per invoice.

    `due_on` is unknown (NULL) while a back-to-back payout waits for the client's payment.
    """

    __tablename__ = "payouts"
    __table_args__ = (
        sa.UniqueConstraint("mission_id", "month"),
        sa.UniqueConstraint("invoice_id"),
        sa.ForeignKeyConstraint(["mission_id", "month"], ["cras.mission_id", "cras.month"]),
        sa.CheckConstraint(
            sa.text(
                "fee >= 0 AND fee_deducted >= 0 AND fee_carried_out >= 0 AND net_amount >= 0"
                " AND net_amount = amount - fee - fee_deducted + fee_carried_out"
            ),
            name="amounts",
        ),
        sa.Index(None, "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    month: Mapped[str] = mapped_column(sa.String(MONTH_LENGTH))
    invoice_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("invoices.id"))
    offer: Mapped[PaymentOffer] = mapped_column(str_enum(PaymentOffer, "offer"))
    amount: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    # Fee balances of earlier months taken in, and what this payout could not cover
    # (domain.carry_over): the net is never below zero.
    fee_deducted: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    fee_carried_out: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    net_amount: Mapped[Decimal]
    due_on: Mapped[date | None]
    status: Mapped[PayoutStatus] = mapped_column(str_enum(PayoutStatus, "status"))
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    paid_at: Mapped[datetime | None]
    schedule: Mapped[dict[str, Any] | None]
    """Why `due_on` is what it is (schemas.payouts.PayoutDateFacts), for support once the
    payout workflow is gone; NULL while a manual import awaits, and before revision 0011."""
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class CarriedBalanceKind(enum.StrEnum):
    """schemas.payouts.CarryKind, as the ledger stores it."""

    INVOICE = "invoice"
    FEE = "fee"


class CarriedBalanceRow(Base):
    """A balance a month could not absorb, owed by the provider (domain.carry_over): one per
    (mission, month, kind), written in the CRA validation's transaction; `into_month` is set
    when a later month's validation takes it in (NULL: still owed). What a mission ends with
    still NULL is an ops alert (`carry_over.unabsorbed`)."""

    __tablename__ = "carried_balances"
    __table_args__ = (
        sa.UniqueConstraint("mission_id", "from_month", "kind"),
        sa.ForeignKeyConstraint(["mission_id", "from_month"], ["cras.mission_id", "cras.month"]),
        sa.CheckConstraint(sa.text("amount > 0"), name="amount"),
        sa.Index(None, "mission_id", "into_month"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    mission_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    from_month: Mapped[str] = mapped_column(sa.String(MONTH_LENGTH))
    kind: Mapped[CarriedBalanceKind] = mapped_column(str_enum(CarriedBalanceKind, "kind"))
    amount: Mapped[Decimal]
    invoice_number: Mapped[str | None] = mapped_column(sa.String(REFERENCE_LENGTH))
    into_month: Mapped[str | None] = mapped_column(sa.String(MONTH_LENGTH))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


# --- Email outbox, timeline, platform events ------------------------------------------------


class EmailOutbox(Base):
    """An email written in the same transaction as the state change it announces.

    `outbox_key` is a deterministic business key ("proposal.submitted:P-1:provider"): write
    with `INSERT … ON CONFLICT (outbox_key) DO NOTHING`; the Message-ID derives from it.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (
        sa.CheckConstraint(sa.text("attempts >= 0"), name="attempts"),
        sa.Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    outbox_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), unique=True)
    mission_id: Mapped[str | None] = mapped_column(sa.String(ID_LENGTH), index=True)
    recipients: Mapped[list[str]] = mapped_column(ARRAY(sa.String(EMAIL_LENGTH)))
    subject: Mapped[str] = mapped_column(sa.Text)
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str | None] = mapped_column(sa.Text)
    template: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "status"), server_default=OutboxStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(server_default=sa.text("0"))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    message_id: Mapped[str | None] = mapped_column(sa.String(300))
    claim_token: Mapped[str | None] = mapped_column(sa.String(36))
    """Which delivery attempt is talking to SMTP for this row (until `claimed_until`)."""
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    sent_at: Mapped[datetime | None]


class MissionEvent(Base):
    """The mission timeline (audit): one row per transition, never written twice thanks to
    `idempotency_key` (e.g. "cra.validated:M-1:2026-11")."""

    __tablename__ = "mission_events"
    __table_args__ = (sa.Index(None, "mission_id", "at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), unique=True)
    mission_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    kind: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created_at()


class ProcessedEvent(Base):
    """The gateway's idempotency table: one row per platform `event_id`."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(EVENT_ID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(64))
    # SHA-256 (hex) of the request body: the same event_id with another body is refused.
    payload_sha256: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[ProcessedEventStatus] = mapped_column(str_enum(ProcessedEventStatus, "status"))
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    workflow_id: Mapped[str | None] = mapped_column(sa.String(300))
    response: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    # The gateway holding a `processing` claim, and until when: a redelivery waits for a live
    # lease (503, Retry-After) and takes over an expired one (its claimant died).
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires_at: Mapped[datetime | None]
    # proposal.submitted: the RFP it answers, so rfp.closed finds the proposals accepted but
    # not yet written to `proposals` by the worker.
    rfp_id: Mapped[str | None] = mapped_column(sa.String(ID_LENGTH), index=True)
