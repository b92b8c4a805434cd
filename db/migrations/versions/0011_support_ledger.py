"""What support reads from the ledger once the workflows are gone (issue 13 point 1).

`contracting mission show`, `explain` and the gateway's read routes answer from PostgreSQL;
two facts they need were only in the workflows' state:

- `missions.started_on`: the day the mission actually started (legal verification may end
  after the planned start date);
- `payouts.schedule`: why the payout date is what it is (`schemas.payouts.PayoutDateFacts`:
  the raw date, the shift by a weekend or a holiday, the legal limit), as the CRA
  validation computed it and a manual import re-dated it.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-30 14:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("missions", sa.Column("started_on", sa.Date(), nullable=True))
    op.add_column("payouts", sa.Column("schedule", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("payouts", "schedule")
    op.drop_column("missions", "started_on")
