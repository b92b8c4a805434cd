"""VAT regimes and company registrations (issue 11: VAT follows where the provider is).

`providers.vat_number` (the compact intra-community number), the registration printed on a
company's invoices (`registration_form`, `share_capital`, `rcs_city`, all set or all NULL)
on `clients` and `providers`, and `invoices.vat_regime` instead of `invoices.vat_franchise`
(`french_vat`, `franchise`, `reverse_charge_eu`, `reverse_charge_non_eu`; existing rows map
franchise → `franchise`, the others → `french_vat`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTY_TABLES = ("clients", "providers")
REGISTRATION_COMPLETE = (
    "(registration_form IS NULL) = (share_capital IS NULL)"
    " AND (share_capital IS NULL) = (rcs_city IS NULL)"
)
VAT_REGIMES = ("french_vat", "franchise", "reverse_charge_eu", "reverse_charge_non_eu")


def upgrade() -> None:
    for table in PARTY_TABLES:
        op.add_column(table, sa.Column("registration_form", sa.String(length=40), nullable=True))
        op.add_column(
            table, sa.Column("share_capital", sa.Numeric(precision=14, scale=2), nullable=True)
        )
        op.add_column(table, sa.Column("rcs_city", sa.String(length=100), nullable=True))
        op.create_check_constraint(op.f(f"ck_{table}_registration"), table, REGISTRATION_COMPLETE)
    op.add_column("providers", sa.Column("vat_number", sa.String(length=20), nullable=True))
    op.add_column(
        "invoices",
        sa.Column(
            "vat_regime",
            sa.String(length=32),
            server_default=sa.text("'french_vat'"),
            nullable=False,
        ),
    )
    op.execute("UPDATE invoices SET vat_regime = 'franchise' WHERE vat_franchise")
    allowed = ", ".join(f"'{regime}'" for regime in VAT_REGIMES)
    op.create_check_constraint(
        op.f("ck_invoices_vat_regime"), "invoices", f"vat_regime IN ({allowed})"
    )
    op.drop_column("invoices", "vat_franchise")


def downgrade() -> None:
    op.add_column(
        "invoices",
        sa.Column("vat_franchise", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE invoices SET vat_franchise = (vat_regime = 'franchise')")
    op.drop_constraint(op.f("ck_invoices_vat_regime"), "invoices", type_="check")
    op.drop_column("invoices", "vat_regime")
    op.drop_column("providers", "vat_number")
    for table in PARTY_TABLES:
        op.drop_constraint(op.f(f"ck_{table}_registration"), table, type_="check")
        for column in ("rcs_city", "share_capital", "registration_form"):
            op.drop_column(table, column)
