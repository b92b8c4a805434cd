"""What every lifecycle transition writes beside its state change: the timeline and the outbox.

Both are keyed by a deterministic business key and written with `ON CONFLICT DO NOTHING`, in
the caller's transaction, so a retried activity never writes either twice.

Every transition writes both: their statements are Core statements on the tables, built once
(the ORM would add nothing to an `INSERT … ON CONFLICT`, and a statement built per call is
rebuilt and re-keyed for SQLAlchemy's compiled cache every time: worker CPU per transition).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities.emails import render
from db.keys import fit_key
from db.models import EmailOutbox, MissionEvent
from schemas.payouts import PayoutTerms

_EVENTS: Table = MissionEvent.__table__  # type: ignore[assignment]
_OUTBOX: Table = EmailOutbox.__table__  # type: ignore[assignment]

_RECORD_TIMELINE = (
    insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=[_EVENTS.c.idempotency_key])
    .returning(_EVENTS.c.id)
)
"""Its values are the execution's parameters: idempotency_key, mission_id, kind, at, data."""

_QUEUE_EMAIL = insert(_OUTBOX).on_conflict_do_nothing(index_elements=[_OUTBOX.c.outbox_key])
"""Its values are the execution's parameters: the outbox row's columns."""


async def record_timeline(
    session: AsyncSession,
    *,
    key: str,
    mission_id: str,
    kind: str,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> bool:
    """Append a timeline event; False when this transition had already been recorded.

    A key longer than its column is shortened (`db.keys.fit_key`), the same way every time."""
    key = fit_key(key)
    inserted = await session.execute(
        _RECORD_TIMELINE,
        {
            "idempotency_key": key,
            "mission_id": mission_id,
            "kind": kind,
            "at": at,
            "data": data or {},
        },
    )
    return inserted.scalar_one_or_none() is not None


async def queue_email(
    session: AsyncSession,
    *,
    key: str,
    mission_id: str | None,
    recipients: list[str],
    template: str,
    context: dict[str, Any],
) -> str:
    """Render a French template into the outbox; returns the key for the send activity
    (`key` shortened when longer than its column: `db.keys.fit_key`)."""
    key = fit_key(key)
    email = render(template, **context)
    await session.execute(
        _QUEUE_EMAIL,
        {
            "outbox_key": key,
            "mission_id": mission_id,
            "recipients": recipients,
            "subject": email.subject,
            "body_text": email.body,
            "template": template,
        },
    )
    return key


def payout_schedule(terms: PayoutTerms) -> dict[str, Any] | None:
    """The payout date's facts as the ledger keeps them (`payouts.schedule`), so support can
    explain the date once the payout workflow is gone."""
    return terms.schedule.model_dump(mode="json") if terms.schedule is not None else None
