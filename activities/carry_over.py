"""The ops alert of a mission that ends owing a balance (domain.carry_over): nothing is paid
for it, a person decides (ask the provider, or write it off).

Raised in the transaction of `mission.ended` (activities/missions.py), like the other ops
alerts (`billing_documents.not_issued`, `client_payment.overpaid`): an ERROR log line, the
timeline row `carry_over.unabsorbed` and one e-mail to ops, both keyed by the mission, so a
retried transition alerts once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.transitions import queue_email, record_timeline
from db.models import CarriedBalanceRow
from domain.carry_over import outstanding_text
from domain.money import ZERO
from schemas.payouts import CarriedBalance, CarryKind


async def alert_unabsorbed(
    session: AsyncSession, mission_id: str, *, at: datetime, ops_email: str
) -> str | None:
    """Alert ops when the mission still owes carried balances; the e-mail's outbox key."""
    rows = (
        await session.execute(
            select(CarriedBalanceRow)
            .where(
                CarriedBalanceRow.mission_id == mission_id, CarriedBalanceRow.into_month.is_(None)
            )
            .order_by(CarriedBalanceRow.from_month, CarriedBalanceRow.kind)
        )
    ).scalars()
    balances = [
        CarriedBalance(
            kind=CarryKind(row.kind.value),
            from_month=row.from_month,
            amount=row.amount,
            invoice_number=row.invoice_number,
        )
        for row in rows
    ]
    if not balances:
        return None
    invoice = sum((b.amount for b in balances if b.kind is CarryKind.INVOICE), ZERO)
    fee = sum((b.amount for b in balances if b.kind is CarryKind.FEE), ZERO)
    text = outstanding_text(balances)
    key = f"carry_over.unabsorbed:{mission_id}"
    recorded = await record_timeline(
        session,
        key=key,
        mission_id=mission_id,
        kind="carry_over.unabsorbed",
        at=at,
        data={
            "invoice_balance": str(invoice),
            "fee_balance": str(fee),
            "balances": [b.model_dump(mode="json") for b in balances],
        },
    )
    if recorded:
        activity.logger.error(
            "mission %s ended owing carried balances, nothing paid for them: %s",
            mission_id,
            text,
        )
    return await queue_email(
        session,
        key=f"{key}:ops",
        mission_id=mission_id,
        recipients=[ops_email],
        template="carry_over_unabsorbed",
        context={
            "mission_id": mission_id,
            "invoice_balance": str(invoice),
            "fee_balance": str(fee),
            "balances": text,
        },
    )
