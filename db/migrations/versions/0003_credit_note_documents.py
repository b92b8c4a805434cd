"""Billing documents: the credit note's Factur-X (`kind` 'credit_note').

A credit note cancelling a generated invoice gets its file, like the invoice. Downgrading
refuses (CHECK violation) while issued credit-note files exist: they are legal records.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 19:45:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_billing_documents_kind"


def _allow(*kinds: str) -> None:
    op.drop_constraint(op.f(NAME), "billing_documents", type_="check")
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    op.create_check_constraint(op.f(NAME), "billing_documents", f"kind IN ({allowed})")


def upgrade() -> None:
    _allow("bpf", "invoice", "credit_note")


def downgrade() -> None:
    _allow("bpf", "invoice")
