"""Parties' postal addresses and the billing documents' files.

`proposal.submitted` now carries the client's and the provider's postal address (a mandatory
invoice mention, L441-9 Code de commerce): four nullable columns on `clients` and `providers`,
all set or all NULL (parties recorded before this revision have none). `billing_documents`
holds each BPF and generated invoice (Factur-X) as issued, one per (mission, month, kind).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTY_TABLES = ("clients", "providers")
ADDRESS_COMPLETE = (
    "(address_lines IS NULL) = (postal_code IS NULL)"
    " AND (postal_code IS NULL) = (city IS NULL)"
    " AND (city IS NULL) = (address_country IS NULL)"
)
BILLING_DOCUMENT_KINDS = ("bpf", "invoice")


def upgrade() -> None:
    for table in PARTY_TABLES:
        op.add_column(table, sa.Column("address_lines", postgresql.ARRAY(sa.Text()), nullable=True))
        op.add_column(table, sa.Column("postal_code", sa.String(length=16), nullable=True))
        op.add_column(table, sa.Column("city", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("address_country", sa.String(length=2), nullable=True))
        op.create_check_constraint(op.f(f"ck_{table}_address"), table, ADDRESS_COMPLETE)
    kinds = ", ".join(f"'{kind}'" for kind in BILLING_DOCUMENT_KINDS)
    op.create_table(
        "billing_documents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("month", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"kind IN ({kinds})", name=op.f("ck_billing_documents_kind")),
        sa.CheckConstraint("size = octet_length(content)", name=op.f("ck_billing_documents_size")),
        sa.ForeignKeyConstraint(
            ["mission_id", "month"],
            ["cras.mission_id", "cras.month"],
            name=op.f("fk_billing_documents_mission_id_month_cras"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_documents")),
        sa.UniqueConstraint(
            "mission_id", "month", "kind", name=op.f("uq_billing_documents_mission_id_month_kind")
        ),
        sa.UniqueConstraint(
            "mission_id", "name", name=op.f("uq_billing_documents_mission_id_name")
        ),
    )


def downgrade() -> None:
    op.drop_table("billing_documents")
    for table in reversed(PARTY_TABLES):
        op.drop_constraint(op.f(f"ck_{table}_address"), table, type_="check")
        for column in ("address_country", "city", "postal_code", "address_lines"):
            op.drop_column(table, column)
