"""No negative invoice, no negative payout (issue 11 point 2), through MissionWorkflow with the
real activities, PostgreSQL and the SMTP sink.

A three-month Flash mission at 650 €: 10 days, then 0 days and a −1,300 € correction of the
first month, then 1.5 days. The second month's invoice is 0 € (not −1,560 €), nothing is
paid, its e-mails say the 1,300 € are carried over; the third month's invoice opens with
"Report du solde négatif de <mois>" for −1,300 € and cannot absorb it either (975 € of
service), and its 48.75 € fee is larger than its 0 € gross: the mission ends with 325 € of
invoice balance and 48.75 € of fee owed by the provider, an ops alert (timeline row, ops
e-mail), and no payout ever below zero. The third month's validation is retried after its
commit (a worker lost before replying): the retry reads back what it took in.
"""

from __future__ import annotations

import re
from decimal import Decimal

import facturx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import (
    BillingDocument,
    BillingDocumentKind,
    CarriedBalanceRow,
    Invoice,
    MissionEvent,
    Payout,
)
from schemas.cra import CraValidation, CraValidationResult
from schemas.enums import PaymentOffer
from schemas.names import RECORD_CRA_VALIDATION
from settings import Settings
from starter.devstack.mailsink import MailSink
from starter.support.explain import carried_into, explain_month
from tests.support.mission import MissionHarness, MonthPlan, first_validation_day
from tests.support.waits import about, naming
from tests.support.workers import real_worker


def _plan(month: str, days: str, **lines: object) -> MonthPlan:
    validate_on = first_validation_day(month)
    assert validate_on is not None
    return MonthPlan(month, Decimal(days), validate_on, dict(lines))


async def test_a_month_that_cannot_absorb_a_correction_carries_it_over(
    own_time_skipping_env: WorkflowEnvironment,
    stack_settings: Settings,
    smtp_sink: MailSink,
    db_engine: AsyncEngine,
) -> None:
    real = Activities(
        create_engine(stack_settings.database_url), Mailer(stack_settings), settings=stack_settings
    )
    lost: list[str] = []

    @activity.defn(name=RECORD_CRA_VALIDATION)
    async def lost_after_commit(v: CraValidation) -> CraValidationResult:
        """The month that takes a balance in commits, then its worker is lost: the retry
        must read back what it took in, not take in anything twice."""
        result = await real.cra.record_cra_validation(v)
        if v.cra.days == Decimal("1.5") and not lost:
            lost.append(v.month)
            raise RuntimeError("worker lost after the commit, before the reply")
        return result

    async with real_worker(own_time_skipping_env, stack_settings, lost_after_commit) as (queue, _):
        h = MissionHarness(own_time_skipping_env, queue, db_engine, sink=smtp_sink)
        await _carry_over_mission(h)
    assert lost


async def _carry_over_mission(h: MissionHarness) -> None:
    mission, months = await h.mission_in_progress(PaymentOffer.FLASH, months=3)
    pid = (await h.state(mission)).mission_id
    first, second, third = months
    correction = {"label": "Trop facturé", "amount": "-1300.00", "corrects_month": first}

    await h.run_month(mission, PaymentOffer.FLASH, _plan(first, "10"))
    zero = await h.run_month(
        mission, PaymentOffer.FLASH, _plan(second, "0", corrections=[correction])
    )
    # Month 2: 0 days and −1,300 €: an invoice of 0 € (continuous numbering), never −1,560 €.
    assert zero.cra.invoice_number is not None
    assert zero.cra.amount_excl_vat == Decimal("0.00")
    assert zero.cra.amount_incl_vat == Decimal("0.00")
    validated_mail = (await h.mails(about(pid, f"CRA {second} validé"), 1))[0]
    assert not re.search(r"[-−]\s?[0-9][0-9 ]*,[0-9]{2} €", validated_mail.text())
    assert "1 300,00 €" in validated_mail.text() and "report" in validated_mail.text().lower()

    last = await h.run_month(mission, PaymentOffer.FLASH, _plan(third, "1.5"))
    # Month 2's Flash payout came (3 business days): nothing wired, and it says why.
    paid_mail = (await h.mails(about(pid, f"Aucun virement : mission {pid}, CRA {second}"), 1))[0]
    assert "viré" not in paid_mail.text()
    assert "1 300,00 € HT) est reporté" in paid_mail.text()
    assert not h.sent(pid, f"Paiement effectué : mission {pid}, CRA {second}")

    # Month 3 opens with the carried balance, names its origin, and carries what is left.
    assert last.cra.amount_incl_vat == Decimal("0.00")
    invoices = await h.rows(select(Invoice).where(Invoice.mission_id == pid))
    assert all(row.amount_excl_vat >= 0 and row.amount_incl_vat >= 0 for row in invoices)
    payouts = await h.rows(select(Payout).where(Payout.mission_id == pid))
    assert {row.month: row.net_amount for row in payouts} == {
        first: Decimal("7475.00"),  # 7,800 € incl. VAT - 5 % of 6,500 €
        second: Decimal("0.00"),
        third: Decimal("0.00"),  # its 48.75 € fee is larger than its 0 € gross
    }
    documents = await h.rows(
        select(BillingDocument).where(
            BillingDocument.mission_id == pid,
            BillingDocument.kind == BillingDocumentKind.INVOICE,
            BillingDocument.month == third,
        )
    )
    assert len(documents) == 1, "the invoice's lines agree with its ledger row"
    _, xml = facturx.get_facturx_xml_from_pdf(documents[0].content, check_xsd=False)
    text = xml.decode()
    assert "Report du solde négatif de" in text
    assert zero.cra.invoice_number in text

    # The ledger: month 2's balance taken in once, by month 3, which carries its own on.
    ledger = await h.rows(select(CarriedBalanceRow).where(CarriedBalanceRow.mission_id == pid))
    assert sorted((r.from_month, r.kind.value, r.amount, r.into_month) for r in ledger) == [
        (second, "invoice", Decimal("1300.00"), third),
        (third, "fee", Decimal("48.75"), None),
        (third, "invoice", Decimal("325.00"), None),
    ]

    # `explain` says where each balance comes from, how much, and into which month.
    state = await h.state(mission)
    states = [await h.payout_state(pid, month) for month in (second, third)]
    taken_by = carried_into(list(states))
    told = [
        explain_month(state, month, None, payout, await h.today(), taken_by)
        for month, payout in zip((second, third), states, strict=True)
    ]
    assert [r.facts for r in told[0].carry_over] == [
        {"kind": "invoice", "from_month": second, "amount": "1300.00", "into_month": third}
    ]
    assert [(r.code, r.facts["amount"]) for r in told[1].carry_over] == [
        ("carried_in", "1300.00"),
        ("carried_out", "325.00"),
        ("carried_out", "48.75"),
    ]
    assert zero.cra.invoice_number in told[1].carry_over[0].message

    # The mission ends with a balance owed by the provider: an ops alert, nothing paid.
    await h.ended(mission)
    alerts = await h.rows(
        select(MissionEvent).where(
            MissionEvent.mission_id == pid, MissionEvent.kind == "carry_over.unabsorbed"
        )
    )
    assert len(alerts) == 1
    assert alerts[0].data["invoice_balance"] == "325.00"
    assert alerts[0].data["fee_balance"] == "48.75"
    ops = await h.mails(naming(f"carry_over.unabsorbed.{pid}"), 1)
    assert "325,00 €" in ops[0].text() and "48,75 €" in ops[0].text()
