"""Terms that change inside a month (issue 11 points 5 and 6), through MissionWorkflow on the
time-skipping server with the real activities (PostgreSQL, SMTP sink): a month that straddles
a change of TJM or offer is billed in two periods, each with its own CRA, BPF, invoice and
payout at its own TJM and offer."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from sqlalchemy import select

from db.models import Bpf, Invoice, Payout
from domain.clock import paris_instant
from domain.cra import month_bounds
from domain.fees import offer_fee
from schemas.enums import MissionStage, PaymentOffer
from tests.support.mission import MissionHarness, check_billing
from tests.support.months import next_month


async def test_a_renewal_with_new_terms_from_the_16th_bills_the_month_in_two_periods(
    mission_harness: MissionHarness,
) -> None:
    h = mission_harness
    month = next_month(await h.today())
    first, last = month_bounds(month)
    old_end = first + timedelta(days=14)  # the contract ends on the 15th
    mission = await h.contract(PaymentOffer.EXPRESS, first, old_end)
    await h.until(mission, lambda s: s.stage in ("to_start", "in_progress"))
    await h.sleep_until(paris_instant(first, time(0, 5)))
    state = await h.until(mission, lambda s: s.stage == "in_progress" and month in s.cra_months)
    pid = state.mission_id

    # Renewed to the month's end, 100 € more a day and Flash, from the 16th.
    await h.renew(mission, last, tjm="750.00", offer=PaymentOffer.FLASH)
    state = await h.continued(mission, mission.first_execution_run_id or "")
    assert state.renewals[0].start_date == old_end + timedelta(days=1)

    # The first period (1st-15th) is billed at the old TJM under Express, from its own end.
    before = await h.month(mission, month, days=Decimal("10"), ends=old_end)
    check_billing(before, PaymentOffer.EXPRESS, Decimal("650.00"), Decimal("10"))
    # The second (16th-end) at the new TJM under Flash: 11 days at +100 €.
    second = f"{month}-p2"
    after = await h.month(mission, second, days=Decimal("11"))
    check_billing(after, PaymentOffer.FLASH, Decimal("750.00"), Decimal("11"))

    invoices = await h.rows(
        select(Invoice.month, Invoice.number, Invoice.service_start, Invoice.service_end)
        .where(Invoice.mission_id == pid)
        .order_by(Invoice.service_start)
    )
    assert [(i.month, i.service_start, i.service_end) for i in invoices] == [
        (month, first, old_end),
        (second, old_end + timedelta(days=1), last),
    ]
    assert len({i.number for i in invoices}) == 2
    bpfs = await h.rows(select(Bpf.number).where(Bpf.mission_id == pid).order_by(Bpf.month))
    assert len({b.number for b in bpfs}) == 2 and all(len(b.number) <= 35 for b in bpfs)
    payouts = await h.rows(
        select(Payout.month, Payout.offer, Payout.fee)
        .where(Payout.mission_id == pid)
        .order_by(Payout.month)
    )
    assert [(p.month, p.offer, p.fee) for p in payouts] == [
        (month, "express", offer_fee(PaymentOffer.EXPRESS, Decimal("650.00"), Decimal("10"))),
        (second, "flash", offer_fee(PaymentOffer.FLASH, Decimal("750.00"), Decimal("11"))),
    ]

    ended = await h.ended(mission)
    assert ended.stage == MissionStage.COMPLETED
