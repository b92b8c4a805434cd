"""An email the SMTP server refused for good is `refused` (issue 12 point 4).

A permanent refusal (5xx, or every recipient refused) no longer fails the activity that
delivers a transition's emails: the row is marked `refused` with the server's answer, the
transition's other emails are still sent, and ops resend it once the cause is fixed.
Downgrading turns refused rows back into pending ones (their `last_error` stays).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:15:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_email_outbox_status"


def _allow(*statuses: str) -> None:
    op.drop_constraint(op.f(NAME), "email_outbox", type_="check")
    allowed = ", ".join(f"'{status}'" for status in statuses)
    op.create_check_constraint(op.f(NAME), "email_outbox", f"status IN ({allowed})")


def upgrade() -> None:
    _allow("pending", "sent", "refused")


def downgrade() -> None:
    op.execute("UPDATE email_outbox SET status = 'pending' WHERE status = 'refused'")
    _allow("pending", "sent")
