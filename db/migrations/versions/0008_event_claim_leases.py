"""A gateway's claim on an event has an owner and a lease; proposals carry their RFP (issue 12
points 1 and 7).

`claimed_by` and `lease_expires_at`: a redelivery that finds a live claim is told to retry
(503 with Retry-After), one that finds an expired claim takes it over in one compare-and-set
and dispatches the event (the claimant died). Claims written before this revision have no
lease: they count as expired. `rfp_id`: the RFP a `proposal.submitted` answers, written with
its claim, so that `rfp.closed` finds every proposal the gateway accepted, including those the
worker has not written to `proposals` yet.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30 11:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("processed_events", sa.Column("claimed_by", sa.String(200), nullable=True))
    op.add_column(
        "processed_events",
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("processed_events", sa.Column("rfp_id", sa.String(100), nullable=True))
    op.create_index(
        op.f("ix_processed_events_rfp_id"), "processed_events", ["rfp_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_events_rfp_id"), table_name="processed_events")
    op.drop_column("processed_events", "rfp_id")
    op.drop_column("processed_events", "lease_expires_at")
    op.drop_column("processed_events", "claimed_by")
