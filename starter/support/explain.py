"""Explanations for support: `GET /missions/{id}/explain` and `contracting mission explain`.

For each month asked — each billing period of a month that new terms split (`2026-07`,
`2026-07-p2`) — the period's CRA and payout come from the ledger (`cras`, `payouts` with the
date's facts stored at validation, `invoices`, `client_payments`, `carried_balances`), the
mission from the ledger too, with its running workflow's state added (a CRA cycle open but not
filed yet, a renewal on its way): the same answer once the workflows are gone. No CRA row and
no open cycle is a fact too (why the CRA is not visible). The sentences come from
`domain.explanations`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from db.models import Cra, EmailOutbox
from domain.carry_over import explain_carry_over
from domain.cra import submission_opens_on
from domain.explanations import Explanation, why_cra_not_visible, why_payout_not_arrived
from domain.mission_rules import cra_opens_on, cycle_bounds, month_periods
from schemas.cra import CraState
from schemas.enums import CraStatus, MissionStage, OutboxStatus, PaymentOffer, PayoutStatus
from schemas.mission import LiveWorkflow, MissionState
from schemas.payouts import CarriedBalance, CarryKind, PayoutState
from starter.support.ledger import read_cras, read_payouts
from starter.support.missions import PARIS, ledger_session, live_lines, read, with_own_ledger


class Reason(BaseModel):
    code: str
    message: str
    facts: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, explanation: Explanation) -> Reason:
        return cls(code=explanation.code, message=explanation.message, facts=explanation.facts)


class MonthExplanation(BaseModel):
    month: str
    cra_visible: bool
    cra_status: CraStatus | None = None
    payout_status: PayoutStatus | None = None
    payout_date: date | None = None
    offer: PaymentOffer | None = Field(
        default=None, description="the period's payment offer (new terms may split a month)"
    )
    cra: list[Reason] = Field(default_factory=list, description="why the CRA is not visible")
    payout: list[Reason] = Field(
        default_factory=list, description="why the payout has not arrived, or that it has"
    )
    carry_over: list[Reason] = Field(
        default_factory=list,
        description="negative balances taken in from earlier months or carried to a later one",
    )


class MissionExplanation(BaseModel):
    mission_id: str
    stage: MissionStage
    today: date
    payment_offer: PaymentOffer | None = None
    months: list[MonthExplanation]
    emails_refused: list[Reason] = Field(
        default_factory=list,
        description="the mission's e-mails the SMTP server refused for good (from the ledger)",
    )
    live: LiveWorkflow | None = Field(
        default=None,
        description="the mission's workflow: running (its live state added), closed, gone "
        "(past the namespace's retention) or unavailable; the facts are the ledger's",
    )


def _months(first: date, last: date) -> list[str]:
    months: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` (YYYY-MM), both included; [] when `last` is earlier."""
    return _months(date.fromisoformat(f"{first}-01"), date.fromisoformat(f"{last}-01"))


def mission_months(state: MissionState, today: date) -> list[str]:
    """The mission's months so far; the start month when it has not begun."""
    last = min(today, state.end_date)
    return _months(state.start_date, last) or _months(state.start_date, state.start_date)


def billing_periods(
    state: MissionState, month: str, recorded: list[str] | None = None
) -> list[str]:
    """The keys of a month's billing periods (`2026-07`, `2026-07-p2` when new terms begin
    inside it: each has its own CRA and payout), with those the ledger's CRAs hold for it
    (`recorded`); a period key asked stays itself."""
    keys = [period.key for period in month_periods(state, month[:7])]
    if month != month[:7] or not keys:
        return [month]
    extra = [key for key in recorded or [] if key.startswith(month) and key not in keys]
    return sorted([*keys, *extra])


def default_month(state: MissionState, today: date) -> str:
    """The month a bounded read explains when none is asked: the current one while the
    mission runs, else its last (or its first, before it starts)."""
    return mission_months(state, today)[-1]


def _day(at: datetime | None) -> date | None:
    return at.astimezone(PARIS).date() if at is not None else None


TakenBy = dict[tuple[CarryKind, str], str]
"""(kind, from month) → the month that took the balance in."""


def carried_into(payouts: list[PayoutState | None]) -> TakenBy:
    """Which month took in each balance, from the payouts' terms (the ledger's `into_month`)."""
    return {
        (balance.kind, balance.from_month): payout.month
        for payout in payouts
        if payout is not None
        for balance in payout.carried_in
    }


def explain_month(
    state: MissionState,
    month: str,
    cra: CraState | None,
    payout: PayoutState | None,
    today: date,
    taken_by: TakenBy | None = None,
) -> MonthExplanation:
    """Pure: one month's explanation from the workflows' states (None: no such workflow);
    `taken_by` names the month that took in each balance this month carried out."""
    offer = payout.offer if payout is not None else None
    terms = state.terms_on(cra_opens_on(state, month))
    if offer is None and terms is not None:
        offer = terms.payment_offer
    renewal = state.renewal
    hidden = why_cra_not_visible(
        stage=state.stage,
        start_date=state.start_date,
        end_date=state.end_date,
        month=month,
        today=today,
        renewal_step=renewal.step.value if renewal is not None else None,
        renewal_blocked=renewal.blocked if renewal is not None else None,
        cra_open=cra is not None,
        opens_on=cra_opens_on(state, month),
    )
    result = MonthExplanation(
        month=month,
        cra_visible=hidden is None,
        cra_status=cra.status if cra is not None else None,
        payout_status=payout.status if payout is not None else None,
        payout_date=payout.payout_date if payout is not None else None,
        offer=offer,
        cra=[Reason.of(hidden)] if hidden is not None else [],
    )
    if payout is not None:
        taken = taken_by or {}
        out = [
            CarriedBalance.model_validate(
                {**b.model_dump(), "into_month": taken.get((b.kind, b.from_month))}
            )
            for b in payout.carried_out
        ]
        carry = explain_carry_over(month, payout.carried_in, out)
        result.carry_over = [Reason.of(reason) for reason in carry]
    if cra is None:
        return result
    facts = payout.facts if payout is not None else None
    validated_on = cra.validated_on or (facts.validated_on if facts is not None else None)
    reasons = why_payout_not_arrived(
        month=month,
        today=today,
        offer=offer,
        cra_status=cra.status,
        submitted_on=_day(cra.submitted_at),
        submission_opens=submission_opens_on(month, *cycle_bounds(state, month)),
        validated_on=validated_on,
        rejection_comment=cra.rejection_comment,
        manual_import=cra.status is CraStatus.VALIDATED and cra.invoice_number is None,
        invoice_number=(payout.invoice_number if payout is not None else None)
        or cra.invoice_number,
        invoice_date=facts.invoice_date if facts is not None else None,
        payout_status=payout.status if payout is not None else cra.payout_status,
        payout_date=payout.payout_date if payout is not None else cra.payout_date,
        paid_on=_day(payout.paid_at) if payout is not None else None,
        net_amount=payout.net_amount if payout is not None else None,
        raw_date=facts.raw_date if facts is not None else None,
        legal_limit=facts.legal_limit if facts is not None else None,
        capped_by_legal_limit=facts.capped_by_legal_limit if facts is not None else False,
        client_paid_on=facts.client_paid_on if facts is not None else None,
        client_paid=facts.client_paid if facts is not None else None,
        client_still_due=facts.client_still_due if facts is not None else None,
    )
    result.payout = [Reason.of(reason) for reason in reasons]
    return result


async def refused_emails(session: AsyncSession, mission_id: str) -> list[Reason]:
    """The mission's e-mails refused for good, from the outbox: what was refused, to whom,
    the server's answer, and what to do."""
    rows = (
        await session.execute(
            select(EmailOutbox)
            .where(
                EmailOutbox.mission_id == mission_id,
                EmailOutbox.status == OutboxStatus.REFUSED,
            )
            .order_by(EmailOutbox.created_at, EmailOutbox.id)
        )
    ).scalars()
    return [
        Reason(
            code="email_refused",
            message=(
                f"L'e-mail « {row.subject} » à {', '.join(row.recipients)} a été refusé "
                f"par le serveur SMTP ({row.last_error or 'sans réponse'}) : corrigez "
                "l'adresse ou le relais, puis renvoyez-le."
            ),
            facts={
                "outbox_key": row.outbox_key,
                "template": row.template,
                "recipients": ", ".join(row.recipients),
                "error": row.last_error or "",
            },
        )
        for row in rows
    ]


async def explain_mission(
    sessions: async_sessionmaker[AsyncSession],
    client: Client | None,
    mission_id: str,
    months: list[str] | Literal["all", "current"] = "current",
    today: date | None = None,
) -> MissionExplanation:
    """Why the CRA is not visible and why the payout has not arrived, for each of `months`
    ("all": every month of the mission so far; "current": `default_month`), and the e-mails
    the SMTP server refused for good. One code path for the CLI and the gateway.

    Raises `UnknownMission` when the ledger has never seen the mission, `MissionUnavailable`
    when PostgreSQL cannot answer; Temporal out of reach only shows in `live`."""
    today = today or datetime.now(PARIS).date()
    async with ledger_session(sessions) as session:
        reading = await read(session, client, mission_id, today)
        state = reading.state
        if months == "all":
            asked = mission_months(state, today)
        elif months == "current":
            asked = [default_month(state, today)]
        else:
            asked = months
        recorded = list(
            (await session.execute(select(Cra.month).where(Cra.mission_id == mission_id))).scalars()
        )
        keys = [key for each in asked for key in billing_periods(state, each, recorded)]
        cras = await read_cras(session, state, keys)
        validated = {k: c.validated_on for k, c in cras.items() if c.validated_on is not None}
        payouts = await read_payouts(session, mission_id, keys, validated)
        refused = await refused_emails(session, mission_id)
    live_cycles = set(reading.live.state.cra_months) if reading.live.state is not None else set()
    found = []
    for key in keys:
        cra = cras.get(key)
        if cra is None and key in live_cycles:  # open, nothing filed yet
            start, end = cycle_bounds(state, key)
            cra = CraState(mission_id=mission_id, month=key, max_days=(end - start).days + 1)
        found.append((key, cra, payouts.get(key)))
    taken_by = carried_into([payout for _, _, payout in found])
    explained = [
        explain_month(state, each, cra, payout, today, taken_by) for each, cra, payout in found
    ]
    contract = state.terms_on(today) or state.legal.contract
    return MissionExplanation(
        mission_id=mission_id,
        stage=state.stage,
        today=today,
        payment_offer=contract.payment_offer if contract is not None else None,
        months=explained,
        emails_refused=refused,
        live=reading.live.workflow,
    )


async def explain_with_ledger(
    client: Client | None, database_url: str, mission_id: str, month: str | None = None
) -> MissionExplanation:
    """For the CLI: `explain_mission` with its own connection to the ledger (every month so
    far, or `month`).

    Raises `MissionUnavailable` when PostgreSQL cannot answer."""
    months: list[str] | Literal["all"] = [month] if month else "all"
    return await with_own_ledger(
        database_url, lambda sessions: explain_mission(sessions, client, mission_id, months)
    )


def render_explanation(explanation: MissionExplanation) -> str:
    """Plain text for a support agent: one block per month."""
    offer = explanation.payment_offer.value if explanation.payment_offer else "—"
    lines = [
        f"Mission {explanation.mission_id} — étape {explanation.stage.value}, offre {offer}, "
        f"au {explanation.today.isoformat()}",
        *live_lines(explanation.live),
    ]
    for month in explanation.months:
        cra = month.cra_status.value if month.cra_status else "non visible"
        lines += ["", f"{month.month} — CRA : {cra}"]
        reasons = month.cra + month.payout + month.carry_over
        lines += [f"  - {reason.message}" for reason in reasons]
    if explanation.emails_refused:
        lines += ["", "E-mails refusés"]
        lines += [f"  - {reason.message}" for reason in explanation.emails_refused]
    return "\n".join(lines)
