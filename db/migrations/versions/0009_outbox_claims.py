"""An email is claimed for a while instead of locked while SMTP talks (issue 12 point 4).

Delivery used to hold `SELECT … FOR UPDATE` on the outbox row, and so a database connection,
for as long as the SMTP server took to answer (up to its 30 s timeout, on every attempt of an
outage). Now a short transaction claims the row (`claim_token`, `claimed_until`), SMTP is
called with no connection held, and a second short transaction marks it sent if the claim is
still ours. A claim left by a dead worker lapses at `claimed_until`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 11:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("email_outbox", sa.Column("claim_token", sa.String(length=36), nullable=True))
    op.add_column(
        "email_outbox",
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("email_outbox", "claimed_until")
    op.drop_column("email_outbox", "claim_token")
