"""The demo's scenario (starter/demo/demo.py), without a stack: every event is one the gateway
accepts as well-formed, a re-run on the same day sends the same bytes, and the missions cover
every payment offer, the billed ones started on the first day of last month."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from decimal import Decimal

import pytest

from domain.calendar import is_business_day
from domain.carry_over import month_invoice
from domain.clock import paris_instant
from domain.invoices import invoice_amounts_for_cra
from schemas.enums import PaymentOffer, VatRegime
from schemas.events import CraSubmitted
from schemas.payouts import CarriedBalance, CarryKind
from starter.demo.demo import DURAND, build_scenario
from starter.gateway.events import parse_event

FR_VAT = VatRegime.FRENCH_VAT


@pytest.mark.parametrize("today", [date(2026, 11, 27), date(2027, 1, 1), date(2027, 3, 31)])
def test_every_event_parses_and_a_rerun_sends_the_same_bytes(today: date) -> None:
    first, again = build_scenario(today), build_scenario(today)
    assert [json.dumps(s.event) for s in first.steps] == [json.dumps(s.event) for s in again.steps]
    for step in first.steps:
        # Raises on a malformed event; received on the run date, as the demo sends it.
        parse_event(json.dumps(step.event).encode(), received_at=paris_instant(today, time(12)))
    ids = [step.event["event_id"] for step in first.steps]
    assert len(set(ids)) == len(ids) - 1  # mission 1's proposal is sent twice on purpose


def test_the_missions_cover_every_offer_and_the_billed_ones_have_a_validated_cra() -> None:
    today = date(2026, 11, 27)
    scenario = build_scenario(today)
    signed = {
        step.mission: step.event["data"]["payment_offer"]
        for step in scenario.steps
        if step.event["type"] == "contract.signed" and not step.expect_refusal
    }
    assert set(signed.values()) == {offer.value for offer in PaymentOffer}
    validated = {
        step.mission: step.event["data"]["month"]
        for step in scenario.steps
        if step.event["type"] == "cra.validated" and step.mission != scenario.pid(15)
    }
    # Mission 15, renewed from the 16th at a new TJM and offer: two periods of October.
    assert [
        step.event["data"]["month"]
        for step in scenario.steps
        if step.event["type"] == "cra.validated" and step.mission == scenario.pid(15)
    ] == ["2026-10", "2026-10-p2"]
    # Mission 1's month opens on Monday 30 November (days not yet worked are not billed): on
    # the 27th its CRA is refused, on the 30th it is filed and validated.
    assert validated == {scenario.pid(n): "2026-10" for n in (8, 9, 10, 11, 12, 13, 14)}
    [early] = [
        step
        for step in scenario.steps
        if step.event["type"] == "cra.submitted" and step.mission == scenario.pid(1)
    ]
    assert early.expect_refusal and "2026-11-30" in early.note
    on_the_day = build_scenario(date(2026, 11, 30))
    assert [
        step.event["data"]["month"]
        for step in on_the_day.steps
        if step.event["type"] == "cra.validated" and step.mission == on_the_day.pid(1)
    ] == ["2026-11"]
    starts = {
        step.mission: step.event["data"]["start_date"]
        for step in scenario.steps
        if step.event["type"] == "proposal.submitted"
    }
    assert all(starts[scenario.pid(n)] == "2026-10-01" for n in (8, 9, 10, 11, 12, 13))


@pytest.mark.parametrize("today", [date(2026, 11, 27), date(2027, 1, 1), date(2027, 3, 31)])
def test_one_mission_imports_its_own_invoice_dated_of_its_issue_date(today: date) -> None:
    """Mission 13 is signed `invoicing: provider` (every other one is self-billed), its month is
    validated, then an invoice dated after its import is refused and the provider's invoice,
    issued on last month's last business day with the validated CRA's amounts, is imported."""
    scenario = build_scenario(today)
    pid = scenario.pid(13)
    invoicing = {
        step.mission: step.event["data"].get("invoicing", "platform")
        for step in scenario.steps
        if step.event["type"] == "contract.signed" and not step.expect_refusal
    }
    assert invoicing.pop(pid) == "provider"
    assert set(invoicing.values()) == {"platform"}
    steps = [step for step in scenario.steps if step.mission == pid]
    types = [step.event["type"] for step in steps]
    assert types[-4:] == ["cra.submitted", "cra.validated", "invoice.imported", "invoice.imported"]
    cra, refused, imported = steps[-4].event["data"], steps[-2], steps[-1]
    assert refused.expect_refusal and not imported.expect_refusal
    assert date.fromisoformat(refused.event["data"]["issued_on"]) > today
    issued_on = date.fromisoformat(imported.event["data"]["issued_on"])
    last_month_end = today.replace(day=1) - timedelta(days=1)
    assert issued_on <= last_month_end and issued_on.month == last_month_end.month
    assert is_business_day(issued_on) and issued_on <= today
    assert imported.event["data"]["month"] == cra["month"] == last_month_end.strftime("%Y-%m")
    amounts = invoice_amounts_for_cra(
        CraSubmitted.model_validate(cra), Decimal("610.00"), regime=DURAND.vat_regime
    )
    assert imported.event["data"]["amount_excl_vat"] == str(amounts.total_excl_vat)
    assert imported.event["data"]["vat_amount"] == str(amounts.vat)


def test_one_mission_carries_a_negative_balance_to_the_next_month() -> None:
    """Mission 14: its middle month's correction is larger than the month, so that month's
    invoice is 0 € and the rest goes to the next month's invoice (issue 11 point 2)."""
    scenario = build_scenario(date(2026, 11, 27))
    pid = scenario.pid(14)
    steps = [step for step in scenario.steps if step.mission == pid]
    submitted = {
        step.event["data"]["month"]: CraSubmitted.model_validate(step.event["data"])
        for step in steps
        if step.event["type"] == "cra.submitted"
    }
    validated = [
        step.event["data"]["month"] for step in steps if step.event["type"] == "cra.validated"
    ]
    assert validated == ["2026-08", "2026-09", "2026-10"]
    tjm = Decimal("600.00")
    middle = month_invoice(submitted["2026-09"], tjm, regime=FR_VAT)
    assert invoice_amounts_for_cra(submitted["2026-09"], tjm, regime=FR_VAT).total_excl_vat < 0
    assert middle.amounts.total_incl_vat == Decimal("0.00")
    assert middle.carried_out == Decimal("1800.00")
    taken = CarriedBalance(kind=CarryKind.INVOICE, from_month="2026-09", amount=middle.carried_out)
    last = month_invoice(submitted["2026-10"], tjm, regime=FR_VAT, carried=[taken])
    assert last.amounts.total_excl_vat == Decimal("600.00") * submitted["2026-10"].days - Decimal(
        "1800.00"
    )
