"""Business dates come from the platform's `occurred_at`, through the gateway, on the real dev
server with the real worker and PostgreSQL: a validation processed late keeps its day (invoice
date, payout date), a future `occurred_at` is a 422, a validation before its submission or a
payment before its invoice a 409 with the reason, and invoices stay numbered in date order
per issuer when a validation that happened earlier arrives late."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import Invoice, Payout
from domain.calendar import next_business_day_on_or_after, previous_business_day_on_or_before
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds
from domain.payouts import compute_payout
from schemas.enums import PaymentOffer
from tests.support.factories import envelope
from tests.support.gateway import (
    GatewayTestClient,
    cra_instants,
    file_and_validate,
    file_cra,
    month_open,
    post,
    refused,
    validate_cra,
    view,
)
from tests.support.waits import eventually


async def _validated(gateway: GatewayTestClient, pid: str, month: str) -> None:
    async def done() -> bool:
        return month in (await view(gateway, pid)).state.validated_months

    await eventually(done, within=20)


async def _invoice(engine: AsyncEngine, pid: str, month: str) -> Any:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(Invoice.number, Invoice.issued_on, Payout.due_on)
                .join(Payout, Payout.invoice_id == Invoice.id, isouter=True)
                .where(Invoice.mission_id == pid, Invoice.month == month)
            )
        ).one()
    return row


async def test_a_future_occurred_at_is_422_and_records_nothing(
    gateway: GatewayTestClient,
) -> None:
    pid, month = await month_open(gateway, "basic", 11)
    ahead = datetime.now(UTC) + timedelta(hours=2)
    response = await post(
        gateway, "cra.submitted", occurred_at=ahead, mission_id=pid, month=month, days="1"
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == "occurred_at" and "more than 5 minutes after" in error["msg"]
    inside = await gateway.post_event(
        envelope(
            "cra.submitted",
            {"mission_id": pid, "month": month, "days": "1", "occurred_at": ahead.isoformat()},
        )
    )
    assert inside.status_code == 422 and "belongs to the envelope" in inside.text
    assert (await view(gateway, pid)).state.validated_months == []


async def test_a_late_validation_keeps_its_day_and_one_before_the_submission_is_409(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """The approver validated on the month's last business day; the gateway processes it
    now (a backlog): the invoice and the payout are dated by the validation, not today."""
    pid, month = await month_open(gateway, "express", 12)
    submitted_at, validated_at = cra_instants(month)
    await file_cra(gateway, pid, month, submitted_at)
    await refused(
        await post(
            gateway,
            "cra.validated",
            occurred_at=submitted_at - timedelta(hours=1),
            mission_id=pid,
            month=month,
            approver_id="APR-1",
        ),
        "a validation follows its submission",
    )
    await validate_cra(gateway, pid, month, validated_at)
    await _validated(gateway, pid, month)
    validated_on = paris_date(validated_at)
    expected = compute_payout(PaymentOffer.EXPRESS, validated_on).payout_date

    async def dated() -> bool:
        return (await _invoice(db_engine, pid, month))[2] is not None

    await eventually(dated, within=20)
    _, issued_on, due_on = await _invoice(db_engine, pid, month)
    assert issued_on == validated_on and due_on == expected


async def test_a_cra_filed_before_it_opens_is_409_with_the_day_it_opens(
    gateway: GatewayTestClient,
) -> None:
    """Days not yet worked are not billed: a whole month filed on its 2nd day, or the day
    before its last business day (late in the evening, Paris), is a 409 that names the day
    it opens; filed that day it is accepted and validated."""
    pid, month = await month_open(gateway, "flash", 16)
    first, last = month_bounds(month)
    opens = previous_business_day_on_or_before(last)
    for early in (
        paris_instant(first + timedelta(days=1), time(10)),
        paris_instant(opens) - timedelta(minutes=30),
    ):
        await refused(
            await post(
                gateway, "cra.submitted", occurred_at=early, mission_id=pid, month=month, days="1"
            ),
            f"the {month} CRA cannot be submitted before {opens.isoformat()} (Europe/Paris)",
        )
    await file_cra(gateway, pid, month, paris_instant(opens, time(0, 5)))
    await validate_cra(gateway, pid, month, paris_instant(opens, time(17)))
    await _validated(gateway, pid, month)


async def test_a_payment_before_its_invoice_is_409(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    pid, month = await month_open(gateway, "back_to_back", 13, signed_on=month_bounds("2025-03")[0])
    validated_on = await file_and_validate(gateway, pid, month)
    await _validated(gateway, pid, month)

    async def numbered() -> bool:
        async with db_engine.connect() as conn:
            stmt = select(Payout.id).where(Payout.mission_id == pid, Payout.month == month)
            return (await conn.execute(stmt)).first() is not None

    await eventually(numbered, within=20)
    number, issued_on, _ = await _invoice(db_engine, pid, month)
    assert issued_on == validated_on
    day_before = issued_on - timedelta(days=1)
    await refused(
        await post(
            gateway,
            "client_payment.received",
            invoice_number=number,
            amount="650.00",
            paid_on=day_before.isoformat(),
        ),
        "precedes the invoice",
    )


async def test_invoices_of_an_issuer_stay_in_date_order_when_a_validation_arrives_late(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """Two missions of one provider: the later-dated validation is processed first; the
    earlier one, processed after, gets the next number and is dated no earlier than it."""
    # Two months ago, so that the next business day after its CRA opens is past too.
    first, month = await month_open(gateway, "basic", 14, months_ago=2)
    view_first = await view(gateway, first)
    siren = view_first.state.provider_siren
    second, _ = await month_open(gateway, "basic", 15, siren=siren, months_ago=2)
    due = previous_business_day_on_or_before(month_bounds(month)[1])
    early = paris_instant(due, time(12))
    late = paris_instant(next_business_day_on_or_after(due + timedelta(days=1)), time(17))
    for pid in (first, second):
        await file_cra(gateway, pid, month, early - timedelta(hours=2))
    await validate_cra(gateway, second, month, late)
    await _validated(gateway, second, month)
    await validate_cra(gateway, first, month, early)
    await _validated(gateway, first, month)
    number_late, dated_late, _ = await _invoice(db_engine, second, month)
    number_early, dated_early, _ = await _invoice(db_engine, first, month)
    assert number_late.endswith("000001") and number_early.endswith("000002")
    assert dated_late == paris_date(late) and dated_early == paris_date(late)
