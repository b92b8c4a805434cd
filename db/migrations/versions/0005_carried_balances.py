"""No negative invoice, no negative payout (issue 11 point 2): the carried-balance ledger.

`carried_balances` holds what a month could not absorb (an invoice balance owed to the
client, or a fee the payout could not cover), one per (mission, month, kind), until a later
month takes it in (`into_month`). `payouts` gains the fee balances it took in and what it
carried out; its net is never below zero, nor an invoice's amounts (CHECK constraints). An
existing negative invoice or payout makes the upgrade fail: fix it by hand first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYOUT_AMOUNTS = "ck_payouts_amounts"
INVOICE_NOT_NEGATIVE = "ck_invoices_not_negative"
MONEY = sa.Numeric(precision=12, scale=2)


def _now(name: str) -> sa.Column[datetime]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "carried_balances",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.String(length=100), nullable=False),
        sa.Column("from_month", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("invoice_number", sa.String(length=100), nullable=True),
        sa.Column("into_month", sa.String(length=10), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint("amount > 0", name=op.f("ck_carried_balances_amount")),
        sa.CheckConstraint("kind IN ('invoice', 'fee')", name=op.f("ck_carried_balances_kind")),
        sa.ForeignKeyConstraint(
            ["mission_id", "from_month"],
            ["cras.mission_id", "cras.month"],
            name=op.f("fk_carried_balances_mission_id_from_month_cras"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carried_balances")),
        sa.UniqueConstraint(
            "mission_id",
            "from_month",
            "kind",
            name=op.f("uq_carried_balances_mission_id_from_month_kind"),
        ),
    )
    op.create_index(
        op.f("ix_carried_balances_mission_id_into_month"),
        "carried_balances",
        ["mission_id", "into_month"],
        unique=False,
    )
    for column in ("fee_deducted", "fee_carried_out"):
        op.add_column(
            "payouts",
            sa.Column(column, MONEY, server_default=sa.text("0"), nullable=False),
        )
    op.create_check_constraint(
        op.f(INVOICE_NOT_NEGATIVE),
        "invoices",
        "amount_excl_vat >= 0 AND vat_amount >= 0 AND amount_incl_vat >= 0",
    )
    op.drop_constraint(op.f(PAYOUT_AMOUNTS), "payouts", type_="check")
    op.create_check_constraint(
        op.f(PAYOUT_AMOUNTS),
        "payouts",
        "fee >= 0 AND fee_deducted >= 0 AND fee_carried_out >= 0 AND net_amount >= 0"
        " AND net_amount = amount - fee - fee_deducted + fee_carried_out",
    )


def downgrade() -> None:
    op.drop_constraint(op.f(PAYOUT_AMOUNTS), "payouts", type_="check")
    op.create_check_constraint(
        op.f(PAYOUT_AMOUNTS), "payouts", "fee >= 0 AND net_amount = amount - fee"
    )
    op.drop_constraint(op.f(INVOICE_NOT_NEGATIVE), "invoices", type_="check")
    for column in ("fee_carried_out", "fee_deducted"):
        op.drop_column("payouts", column)
    op.drop_index(op.f("ix_carried_balances_mission_id_into_month"), table_name="carried_balances")
    op.drop_table("carried_balances")
