"""Initial schema: the whole mission lifecycle (see db/models.py).

Revision ID: 0001
Revises:
Create Date: 2026-11-27 16:24:53.035211+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Allowed values of the status and kind columns, frozen as of this revision (the enums of
# schemas/enums.py and db/models.py; stored as VARCHAR(32) with a CHECK constraint).
CRA_LINE_KINDS = ("days", "expense", "overtime", "correction")
CRA_STATUSES = ("draft", "submitted", "rejected", "validated")
DOCUMENT_KINDS = (
    "urssaf_vigilance",
    "kbis",
    "sirene_situation",
    "sworn_statement",
    "foreign_workers_list",
)
DOCUMENT_STATUSES = ("under_review", "accepted", "rejected", "expired")
INVOICE_KINDS = ("generated", "imported")
INVOICE_STATUSES = (
    "awaiting_import",
    "under_verification",
    "blocked",
    "in_payment",
    "paid",
    "cancelled",
)
LEGAL_FORMS = ("company", "auto_entrepreneur")
MISSION_STAGES = (
    "proposal",
    "qualification",
    "legal_verification",
    "to_start",
    "in_progress",
    "renewal_pending",
    "completed",
    "lost",
    "cancelled",
    "terminated",
)
OUTBOX_STATUSES = ("pending", "sent")
PAYMENT_OFFERS = ("basic", "express", "flash", "back_to_back", "immediate")
PAYOUT_STATUSES = (
    "scheduled",
    "waiting_client_payment",
    "waiting_invoice_import",
    "paid",
    "cancelled",
    "flagged",
)
PROCESSED_EVENT_STATUSES = ("processing", "accepted", "failed")
PROPOSAL_STATUSES = (
    "sent",
    "read",
    "interesting",
    "not_interesting",
    "qualification_meeting",
    "retained",
    "lost",
    "cancelled",
)


def _one_of(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("siren ~ '^[0-9]{9}$'", name=op.f("ck_clients_siren")),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_clients")),
    )
    op.create_index(op.f("ix_clients_siren"), "clients", ["siren"], unique=False)
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("outbox_key", sa.String(length=300), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=True),
        sa.Column("recipients", postgresql.ARRAY(sa.String(length=254)), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_email_outbox_attempts")),
        _one_of("email_outbox", "status", OUTBOX_STATUSES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbox")),
        sa.UniqueConstraint("outbox_key", name=op.f("uq_email_outbox_outbox_key")),
    )
    op.create_index(
        op.f("ix_email_outbox_mission_id"), "email_outbox", ["mission_id"], unique=False
    )
    op.create_index(
        op.f("ix_email_outbox_status_created_at"),
        "email_outbox",
        ["status", "created_at"],
        unique=False,
    )
    op.create_table(
        "invoice_number_sequences",
        sa.Column("issuer_siren", sa.String(length=9), nullable=False),
        sa.Column("series", sa.String(length=100), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "last_number >= 0", name=op.f("ck_invoice_number_sequences_last_number")
        ),
        sa.PrimaryKeyConstraint("issuer_siren", "series", name=op.f("pk_invoice_number_sequences")),
    )
    op.create_table(
        "mission_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mission_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_mission_events_idempotency_key")),
    )
    op.create_index(
        op.f("ix_mission_events_mission_id_at"),
        "mission_events",
        ["mission_id", "at"],
        unique=False,
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("workflow_id", sa.String(length=300), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _one_of("processed_events", "status", PROCESSED_EVENT_STATUSES),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_table(
        "providers",
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("legal_form", sa.String(length=32), nullable=False),
        sa.Column("vat_franchise", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("country ~ '^[A-Z]{2}$'", name=op.f("ck_providers_country")),
        sa.CheckConstraint("siren ~ '^[0-9]{9}$'", name=op.f("ck_providers_siren")),
        _one_of("providers", "legal_form", LEGAL_FORMS),
        sa.PrimaryKeyConstraint("siren", name=op.f("pk_providers")),
    )
    op.create_table(
        "approvers",
        sa.Column("approver_id", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_approvers_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("approver_id", name=op.f("pk_approvers")),
    )
    op.create_index(op.f("ix_approvers_client_id"), "approvers", ["client_id"], unique=False)
    op.create_table(
        "legal_documents",
        sa.Column("document_id", sa.String(length=100), nullable=False),
        sa.Column("provider_siren", sa.String(length=9), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("file_ref", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["provider_siren"],
            ["providers.siren"],
            name=op.f("fk_legal_documents_provider_siren_providers"),
        ),
        _one_of("legal_documents", "kind", DOCUMENT_KINDS),
        _one_of("legal_documents", "status", DOCUMENT_STATUSES),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_legal_documents")),
    )
    op.create_index(
        op.f("ix_legal_documents_provider_siren_kind"),
        "legal_documents",
        ["provider_siren", "kind"],
        unique=False,
    )
    op.create_table(
        "rfps",
        sa.Column("rfp_id", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_rfps_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("rfp_id", name=op.f("pk_rfps")),
    )
    op.create_index(op.f("ix_rfps_client_id"), "rfps", ["client_id"], unique=False)
    op.create_table(
        "document_reviews",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("document_id", sa.String(length=100), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "accepted OR comment IS NOT NULL", name=op.f("ck_document_reviews_comment")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["legal_documents.document_id"],
            name=op.f("fk_document_reviews_document_id_legal_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_reviews")),
        sa.UniqueConstraint(
            "document_id", "reviewed_at", name=op.f("uq_document_reviews_document_id_reviewed_at")
        ),
    )
    op.create_table(
        "proposals",
        sa.Column("proposal_id", sa.String(length=100), nullable=False),
        sa.Column("rfp_id", sa.String(length=100), nullable=False),
        sa.Column("provider_siren", sa.String(length=9), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("tjm", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("qualification_meeting_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_proposals_dates")),
        sa.CheckConstraint("tjm > 0", name=op.f("ck_proposals_tjm")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_proposals_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["provider_siren"],
            ["providers.siren"],
            name=op.f("fk_proposals_provider_siren_providers"),
        ),
        sa.ForeignKeyConstraint(["rfp_id"], ["rfps.rfp_id"], name=op.f("fk_proposals_rfp_id_rfps")),
        _one_of("proposals", "status", PROPOSAL_STATUSES),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_proposals")),
    )
    op.create_index(op.f("ix_proposals_client_id"), "proposals", ["client_id"], unique=False)
    op.create_index(
        op.f("ix_proposals_provider_siren"), "proposals", ["provider_siren"], unique=False
    )
    op.create_index(op.f("ix_proposals_rfp_id"), "proposals", ["rfp_id"], unique=False)
    op.create_table(
        "missions",
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("provider_siren", sa.String(length=9), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("current_terms_version", sa.Integer(), nullable=True),
        sa.Column("payment_offer", sa.String(length=32), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.client_id"], name=op.f("fk_missions_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["proposals.proposal_id"], name=op.f("fk_missions_mission_id_proposals")
        ),
        sa.ForeignKeyConstraint(
            ["provider_siren"],
            ["providers.siren"],
            name=op.f("fk_missions_provider_siren_providers"),
        ),
        _one_of("missions", "stage", MISSION_STAGES),
        _one_of("missions", "payment_offer", PAYMENT_OFFERS),
        sa.PrimaryKeyConstraint("mission_id", name=op.f("pk_missions")),
    )
    op.create_index(op.f("ix_missions_client_id"), "missions", ["client_id"], unique=False)
    op.create_index(
        op.f("ix_missions_provider_siren"), "missions", ["provider_siren"], unique=False
    )
    op.create_index(op.f("ix_missions_stage"), "missions", ["stage"], unique=False)
    op.create_table(
        "proposal_status_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("proposal_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.proposal_id"],
            name=op.f("fk_proposal_status_history_proposal_id_proposals"),
            ondelete="CASCADE",
        ),
        _one_of("proposal_status_history", "status", PROPOSAL_STATUSES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_status_history")),
        sa.UniqueConstraint(
            "proposal_id",
            "status",
            "at",
            name=op.f("uq_proposal_status_history_proposal_id_status_at"),
        ),
    )
    op.create_table(
        "contracts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("payment_offer", sa.String(length=32), nullable=False),
        sa.Column("special_conditions_ref", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["missions.mission_id"], name=op.f("fk_contracts_mission_id_missions")
        ),
        _one_of("contracts", "payment_offer", PAYMENT_OFFERS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("mission_id", "version", name=op.f("uq_contracts_mission_id_version")),
    )
    op.create_table(
        "cras",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Numeric(precision=4, scale=1), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("terms_version", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("validated_on", sa.Date(), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejection_comment", sa.Text(), nullable=True),
        sa.Column("approver_id", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "month ~ '^[0-9]{4}-(0[1-9]|1[0-2])(-p[2-9])?$'", name=op.f("ck_cras_month")
        ),
        sa.CheckConstraint("days >= 0 AND days <= 31", name=op.f("ck_cras_days")),
        sa.ForeignKeyConstraint(
            ["approver_id"], ["approvers.approver_id"], name=op.f("fk_cras_approver_id_approvers")
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["missions.mission_id"], name=op.f("fk_cras_mission_id_missions")
        ),
        _one_of("cras", "status", CRA_STATUSES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cras")),
        sa.UniqueConstraint("mission_id", "month", name=op.f("uq_cras_mission_id_month")),
    )
    op.create_table(
        "mission_terms",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tjm", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("payment_offer", sa.String(length=32), nullable=True),
        sa.Column("special_conditions_ref", sa.Text(), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_mission_terms_dates")),
        sa.CheckConstraint("tjm > 0", name=op.f("ck_mission_terms_tjm")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_mission_terms_version")),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["missions.mission_id"],
            name=op.f("fk_mission_terms_mission_id_missions"),
        ),
        _one_of("mission_terms", "payment_offer", PAYMENT_OFFERS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mission_terms")),
        sa.UniqueConstraint(
            "mission_id", "version", name=op.f("uq_mission_terms_mission_id_version")
        ),
    )
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("po_number", sa.String(length=100), nullable=False),
        sa.Column(
            "confirmed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["missions.mission_id"],
            name=op.f("fk_purchase_orders_mission_id_missions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint(
            "mission_id", "po_number", name=op.f("uq_purchase_orders_mission_id_po_number")
        ),
    )
    op.create_table(
        "bpfs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=10), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("amount_excl_vat", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("file_ref", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["mission_id", "month"],
            ["cras.mission_id", "cras.month"],
            name=op.f("fk_bpfs_mission_id_month_cras"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bpfs")),
        sa.UniqueConstraint("mission_id", "month", name=op.f("uq_bpfs_mission_id_month")),
        sa.UniqueConstraint("number", name=op.f("uq_bpfs_number")),
    )
    op.create_table(
        "cra_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("cra_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("receipt_ref", sa.Text(), nullable=True),
        sa.Column("corrects_month", sa.String(length=10), nullable=True),
        sa.CheckConstraint(
            "corrects_month IS NULL OR corrects_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])(-p[2-9])?$'",
            name=op.f("ck_cra_lines_corrects_month"),
        ),
        sa.ForeignKeyConstraint(
            ["cra_id"], ["cras.id"], name=op.f("fk_cra_lines_cra_id_cras"), ondelete="CASCADE"
        ),
        _one_of("cra_lines", "kind", CRA_LINE_KINDS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cra_lines")),
        sa.UniqueConstraint("cra_id", "position", name=op.f("uq_cra_lines_cra_id_position")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("issuer_siren", sa.String(length=9), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=True),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("service_start", sa.Date(), nullable=True),
        sa.Column("service_end", sa.Date(), nullable=True),
        sa.Column("amount_excl_vat", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("vat_amount", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("amount_incl_vat", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("vat_franchise", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("vat_mention", sa.Text(), nullable=True),
        sa.Column("late_payment_rate", sa.Numeric(precision=6, scale=4), nullable=True),
        sa.Column("recovery_indemnity", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("pdf_ref", sa.Text(), nullable=True),
        sa.Column("facturx_ref", sa.Text(), nullable=True),
        sa.Column("file_ref", sa.Text(), nullable=True),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "amount_incl_vat = amount_excl_vat + vat_amount", name=op.f("ck_invoices_totals")
        ),
        sa.CheckConstraint(
            "service_end IS NULL OR service_end >= service_start",
            name=op.f("ck_invoices_service_period"),
        ),
        sa.ForeignKeyConstraint(
            ["issuer_siren"], ["providers.siren"], name=op.f("fk_invoices_issuer_siren_providers")
        ),
        sa.ForeignKeyConstraint(
            ["mission_id", "month"],
            ["cras.mission_id", "cras.month"],
            name=op.f("fk_invoices_mission_id_month_cras"),
        ),
        _one_of("invoices", "kind", INVOICE_KINDS),
        _one_of("invoices", "status", INVOICE_STATUSES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("issuer_siren", "number", name=op.f("uq_invoices_issuer_siren_number")),
        sa.UniqueConstraint("mission_id", "month", name=op.f("uq_invoices_mission_id_month")),
    )
    op.create_index(op.f("ix_invoices_number"), "invoices", ["number"], unique=False)
    op.create_index(op.f("ix_invoices_status"), "invoices", ["status"], unique=False)
    op.create_table(
        "client_payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("days_late", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "penalties",
            sa.Numeric(precision=12, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "indemnity",
            sa.Numeric(precision=12, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_client_payments_amount")),
        sa.CheckConstraint(
            "penalties >= 0 AND indemnity >= 0", name=op.f("ck_client_payments_late_fees")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_client_payments_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_payments")),
        sa.UniqueConstraint("event_id", name=op.f("uq_client_payments_event_id")),
    )
    op.create_index(
        op.f("ix_client_payments_invoice_id"), "client_payments", ["invoice_id"], unique=False
    )
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("issuer_siren", sa.String(length=9), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("amount_excl_vat", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("vat_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("amount_incl_vat", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("pdf_ref", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "amount_incl_vat = amount_excl_vat + vat_amount", name=op.f("ck_credit_notes_totals")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["issuer_siren"],
            ["providers.siren"],
            name=op.f("fk_credit_notes_issuer_siren_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_credit_notes_invoice_id")),
        sa.UniqueConstraint(
            "issuer_siren", "number", name=op.f("uq_credit_notes_issuer_siren_number")
        ),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=10), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("offer", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "fee", sa.Numeric(precision=12, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("net_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "fee >= 0 AND net_amount = amount - fee", name=op.f("ck_payouts_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_payouts_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["mission_id", "month"],
            ["cras.mission_id", "cras.month"],
            name=op.f("fk_payouts_mission_id_month_cras"),
        ),
        _one_of("payouts", "offer", PAYMENT_OFFERS),
        _one_of("payouts", "status", PAYOUT_STATUSES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_payouts_invoice_id")),
        sa.UniqueConstraint("mission_id", "month", name=op.f("uq_payouts_mission_id_month")),
    )
    op.create_index(op.f("ix_payouts_status_due_on"), "payouts", ["status", "due_on"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payouts_status_due_on"), table_name="payouts")
    op.drop_table("payouts")
    op.drop_table("credit_notes")
    op.drop_index(op.f("ix_client_payments_invoice_id"), table_name="client_payments")
    op.drop_table("client_payments")
    op.drop_index(op.f("ix_invoices_status"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_number"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("cra_lines")
    op.drop_table("bpfs")
    op.drop_table("purchase_orders")
    op.drop_table("mission_terms")
    op.drop_table("cras")
    op.drop_table("contracts")
    op.drop_table("proposal_status_history")
    op.drop_index(op.f("ix_missions_stage"), table_name="missions")
    op.drop_index(op.f("ix_missions_provider_siren"), table_name="missions")
    op.drop_index(op.f("ix_missions_client_id"), table_name="missions")
    op.drop_table("missions")
    op.drop_index(op.f("ix_proposals_rfp_id"), table_name="proposals")
    op.drop_index(op.f("ix_proposals_provider_siren"), table_name="proposals")
    op.drop_index(op.f("ix_proposals_client_id"), table_name="proposals")
    op.drop_table("proposals")
    op.drop_table("document_reviews")
    op.drop_index(op.f("ix_rfps_client_id"), table_name="rfps")
    op.drop_table("rfps")
    op.drop_index(op.f("ix_legal_documents_provider_siren_kind"), table_name="legal_documents")
    op.drop_table("legal_documents")
    op.drop_index(op.f("ix_approvers_client_id"), table_name="approvers")
    op.drop_table("approvers")
    op.drop_table("providers")
    op.drop_table("processed_events")
    op.drop_index(op.f("ix_mission_events_mission_id_at"), table_name="mission_events")
    op.drop_table("mission_events")
    op.drop_table("invoice_number_sequences")
    op.drop_index(op.f("ix_email_outbox_status_created_at"), table_name="email_outbox")
    op.drop_index(op.f("ix_email_outbox_mission_id"), table_name="email_outbox")
    op.drop_table("email_outbox")
    op.drop_index(op.f("ix_clients_siren"), table_name="clients")
    op.drop_table("clients")
