"""Terms that change inside a month (issue 11 points 5 and 6), through MissionWorkflow on the
time-skipping server with the real activities (PostgreSQL, SMTP sink): a month that straddles
a change of TJM or offer is billed in two periods, each with its own CRA, BPF, invoice and
payout at its own TJM and offer."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.cra import CraActivities
from db.models import BillingDocument, Bpf, Invoice, Payout
from domain.calendar import previous_business_day_on_or_before
from domain.clock import paris_instant
from domain.cra import month_bounds
from domain.fees import offer_fee
from schemas.cra import CraProvider, CraValidation
from schemas.enums import MissionStage, PaymentOffer
from schemas.events import ContractSigned, CraSubmitted
from schemas.mission import MissionView
from schemas.names import CONTRACT_SIGNED
from starter.support.explain import billing_periods, explain_month
from starter.support.missions import render_mission
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import refused_update
from tests.support.factories import APPROVER
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
    # Both periods' files are issued, each under its own number.
    files = await h.rows(
        select(BillingDocument.month, BillingDocument.kind, BillingDocument.number)
        .where(BillingDocument.mission_id == pid)
        .order_by(BillingDocument.month, BillingDocument.kind)
    )
    assert len(files) == 4 and {f.month for f in files} == {month, second}
    assert {f.number for f in files} == {b.number for b in bpfs} | {i.number for i in invoices}
    payouts = await h.rows(
        select(Payout.month, Payout.offer, Payout.fee)
        .where(Payout.mission_id == pid)
        .order_by(Payout.month)
    )
    assert [(p.month, p.offer, p.fee) for p in payouts] == [
        (month, "express", offer_fee(PaymentOffer.EXPRESS, Decimal("650.00"), Decimal("10"))),
        (second, "flash", offer_fee(PaymentOffer.FLASH, Decimal("750.00"), Decimal("11"))),
    ]

    # A validation retried after its commit (a worker lost before the reply) writes nothing
    # twice: the period's key keeps it apart from the first period, and from itself.
    retried = CraValidation(
        key=f"cra.validated:{pid}:{second}",
        at=await h.now(),
        validated_on=after.validated_on or last,
        mission_id=pid,
        month=second,
        cra=CraSubmitted(mission_id=pid, month=second, days=Decimal("11")),
        approver_id=APPROVER,
        tjm=Decimal("750.00"),
        payment_offer=PaymentOffer.FLASH,
        provider=CraProvider(
            siren=state.provider_siren, name="Durand Conseil", email="paul@durand-conseil.example"
        ),
        client_name="Acme Industries",
        invoice_mode="generated",
        service_start=old_end + timedelta(days=1),
        service_end=last,
        email_context={
            "mission_id": pid,
            "month": second,
            "provider_name": "Durand Conseil",
            "client_name": "Acme Industries",
            "tjm": "750.00",
            "days": "11",
        },
    )
    cra_activities = CraActivities(async_sessionmaker(h.engine, expire_on_commit=False))
    again = await ActivityEnvironment().run(cra_activities.record_cra_validation, retried)
    assert not again.applied and again.invoice_number == after.invoice_number
    for model in (Invoice, Payout, Bpf):
        assert (
            await h.count(select(func.count()).select_from(model).where(model.mission_id == pid))
            == 2
        )

    # Support explains each period on its own, with its own offer.
    state = await h.state(mission)
    today = await h.today()
    assert billing_periods(state, month) == [month, second]
    assert explain_month(state, second, None, None, today).offer == PaymentOffer.FLASH

    ended = await h.ended(mission)
    assert ended.stage == MissionStage.COMPLETED
    await record_history(mission, "mission_mid_month_renewal")  # the run after the renewal


async def test_a_legacy_contract_signs_a_new_one_and_is_paid_on_fixed_dates_from_the_next_day(
    mission_harness: MissionHarness,
) -> None:
    h = mission_harness
    mission, [month] = await h.mission_in_progress(PaymentOffer.BACK_TO_BACK, months=1)
    state = await h.state(mission)
    pid = state.mission_id
    first, last = month_bounds(month)
    signed_on = previous_business_day_on_or_before(first + timedelta(days=14))
    await h.sleep_until(paris_instant(signed_on, time(9, 37)))
    new_contract = ContractSigned(
        proposal_id=pid,
        signed_on=signed_on,
        payment_offer=PaymentOffer.FLASH,
        special_conditions_ref=f"CP2-{pid}",
    )
    await h.send(mission, CONTRACT_SIGNED, new_contract)
    state = await h.until(mission, lambda s: len(s.renewals) == 1)
    assert state.current_terms is not None
    assert state.current_terms.start_date == signed_on + timedelta(days=1)
    # Once on fixed dates, another new contract is refused, saying why.
    assert "on or after 2025-04-28" in await refused_update(mission, CONTRACT_SIGNED, new_contract)
    shown = render_mission(MissionView(state=state, missing=state.legal.missing()))
    assert f"{month}-p2" in shown and "offre flash" in shown

    # The days up to the signature stay back-to-back; the next ones are paid on Flash dates.
    before = await h.month(mission, month, days=Decimal("8"), ends=signed_on)
    assert before.amount_excl_vat == Decimal("5200.00") and before.payout_date is None
    after = await h.month(mission, f"{month}-p2", days=Decimal("12"))
    check_billing(after, PaymentOffer.FLASH, Decimal("650.00"), Decimal("12"))
    payouts = await h.rows(
        select(Payout.month, Payout.offer).where(Payout.mission_id == pid).order_by(Payout.month)
    )
    assert [(p.month, p.offer) for p in payouts] == [
        (month, "back_to_back"),
        (f"{month}-p2", "flash"),
    ]
    assert (await h.ended(mission)).stage == MissionStage.COMPLETED
    assert last == (await h.state(mission)).end_date
