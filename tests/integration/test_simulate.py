"""`contracting simulate`: five missions, one per offer, two months on the time-skipping
server with the real worker, a fresh PostgreSQL database and the in-process SMTP sink; the
printed timeline is what the database holds, and the payout dates follow domain/payouts.py."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Bpf, ClientPayment, Cra, Invoice, Payout
from domain.calendar import next_business_day_on_or_after
from domain.clock import paris_date, paris_instant
from domain.fees import offer_fee
from domain.payouts import PAY_AT, compute_payout
from schemas.enums import PaymentOffer
from starter.demo.simulate import SimulationResult, render, run_simulation

MONTHS = 2
CLI = "from starter.cli import main; main()"


@pytest.fixture(scope="module")
async def simulated(postgres_server) -> tuple[SimulationResult, list[str], str]:
    url = postgres_server.create_database("contracting_simulate", replace=True)
    result = await run_simulation(MONTHS, database_url=url)
    return result, list(render(result)), url


async def _rows(url: str, model, ids: list[str]) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(select(model).where(model.mission_id.in_(ids))))
    finally:
        await engine.dispose()


async def test_one_mission_per_offer_each_month_billed_and_paid(simulated) -> None:
    result, _, url = simulated
    assert sorted(m.offer for m in result.missions) == sorted(PaymentOffer)
    ids = [m.mission_id for m in result.missions]
    offer_of = {m.mission_id: m.offer for m in result.missions}
    for model in (Cra, Bpf, Invoice, Payout):
        per_offer = Counter(offer_of[row.mission_id] for row in await _rows(url, model, ids))
        assert per_offer == dict.fromkeys(PaymentOffer, MONTHS), model.__name__
    payouts = await _rows(url, Payout, ids)
    assert {p.status for p in payouts} == {"paid"}
    assert all(len(m.months) == MONTHS for m in result.missions)
    assert result.emails > 0


async def test_payout_dates_and_fees_follow_the_domain_rules(simulated) -> None:
    result, _, url = simulated
    ids = [m.mission_id for m in result.missions]
    cras = {(c.mission_id, c.month): c for c in await _rows(url, Cra, ids)}
    invoices = {(i.mission_id, i.month): i for i in await _rows(url, Invoice, ids)}
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        paid_by_client = {row.invoice_id: row for row in await conn.execute(select(ClientPayment))}
    await engine.dispose()
    tjm = {m.mission_id: m.tjm for m in result.missions}
    for payout in await _rows(url, Payout, ids):
        key = (payout.mission_id, payout.month)
        cra, invoice = cras[key], invoices[key]
        offer = PaymentOffer(payout.offer)
        assert invoice.issued_on == cra.validated_on  # generated at validation
        if offer is PaymentOffer.BACK_TO_BACK:
            client = paid_by_client[invoice.id]
            expected = next_business_day_on_or_after(client.paid_on)
        else:
            scheduled = compute_payout(offer, cra.validated_on).payout_date
            assert scheduled is not None
            expected = scheduled
        assert payout.due_on == expected, key
        pay_at = paris_instant(expected, PAY_AT)  # or at once when that time has passed
        assert pay_at <= payout.paid_at < pay_at + timedelta(hours=6), key
        assert paris_date(payout.paid_at) == expected, key
        assert payout.fee == offer_fee(offer, tjm[payout.mission_id], cra.days), key
        assert payout.net_amount == payout.amount - payout.fee
        assert payout.amount == invoice.amount_incl_vat


async def test_the_timeline_prints_what_the_database_holds(simulated) -> None:
    result, lines, url = simulated
    text = "\n".join(lines)
    ids = [m.mission_id for m in result.missions]
    invoices = {(i.mission_id, i.month): i for i in await _rows(url, Invoice, ids)}
    cras = {(c.mission_id, c.month): c for c in await _rows(url, Cra, ids)}
    for payout in await _rows(url, Payout, ids):
        key = (payout.mission_id, payout.month)
        invoice, cra = invoices[key], cras[key]
        [line] = [
            line
            for line in lines
            if line.lstrip().startswith(payout.month) and f" {invoice.number} " in line
        ]
        for expected in (
            payout.month,
            cra.validated_on.isoformat(),
            invoice.issued_on.isoformat(),
            f"{invoice.amount_excl_vat:,.2f}",
            f"{invoice.amount_incl_vat:,.2f}",
            payout.due_on.isoformat(),
            f"{payout.fee:,.2f}",
            f"{payout.net_amount:,.2f}",
            "paid",
        ):
            assert expected in line, (expected, line)
    # Late client payments show with their penalties and the €40 indemnity.
    late = [m for mission in result.missions for m in mission.months if m.days_late]
    assert late
    for month in late:
        assert month.penalties > 0 and month.indemnity == Decimal("40.00")
        assert f"paid by the client {month.days_late} days late" in text
    assert f"5 missions × {MONTHS} months: {5 * MONTHS} CRAs" in text


@pytest.mark.parametrize("months", ["0", "37", "twelve"])
def test_months_out_of_range_is_a_usage_error(months: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", CLI, "simulate", "--months", months],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "--months" in run.stderr
    assert run.stdout == ""
