"""Explanations for support: `GET /missions/{id}/explain` and `contracting mission explain`.

For each month of the mission so far (or the month asked) — each billing period of a month
that new terms split (`2026-07`, `2026-07-p2`) — the mission's `state` query, the period's
CRA cycle `cra-<id>-<YYYY-MM[-pN]>` and payout `payout-<id>-<YYYY-MM[-pN]>` are queried; a
workflow that does not exist is a fact too (no cycle yet: why the CRA is not visible). The
sentences come from `domain.explanations`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from db.engine import create_engine, session_factory
from db.models import EmailOutbox
from domain.carry_over import explain_carry_over
from domain.cra import submission_opens_on
from domain.explanations import Explanation, why_cra_not_visible, why_payout_not_arrived
from domain.mission_rules import cra_opens_on, cycle_bounds, month_periods
from schemas.cra import CraState
from schemas.enums import CraStatus, MissionStage, OutboxStatus, PaymentOffer, PayoutStatus
from schemas.ids import cra_workflow_id, mission_workflow_id, payout_workflow_id
from schemas.mission import MissionState
from schemas.names import STATE_QUERY
from schemas.payouts import CarriedBalance, CarryKind, PayoutState
from starter.support.missions import PARIS, MissionUnavailable, UnknownMission

T = TypeVar("T", bound=BaseModel)


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


def _months(first: date, last: date) -> list[str]:
    months: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def mission_months(state: MissionState, today: date) -> list[str]:
    """The mission's months so far; the start month when it has not begun."""
    last = min(today, state.end_date)
    return _months(state.start_date, last) or _months(state.start_date, state.start_date)


def billing_periods(state: MissionState, month: str) -> list[str]:
    """The keys of a month's billing periods (`2026-07`, `2026-07-p2` when new terms begin
    inside it: each has its own CRA and payout); a period key asked stays itself."""
    keys = [period.key for period in month_periods(state, month[:7])]
    return [month] if month != month[:7] or not keys else keys


async def _query(client: Client, workflow_id: str, result_type: type[T]) -> T | None:
    handle = client.get_workflow_handle(workflow_id)
    try:
        result: Any = await handle.query(STATE_QUERY, result_type=result_type)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise MissionUnavailable(f"Temporal did not answer for {workflow_id}: {exc}") from exc
    except WorkflowQueryFailedError as exc:
        raise MissionUnavailable(f"the state query of {workflow_id} failed: {exc}") from exc
    return result  # type: ignore[no-any-return]


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


async def refused_emails(
    sessions: async_sessionmaker[AsyncSession], mission_id: str
) -> list[Reason]:
    """The mission's e-mails refused for good, from the outbox: what was refused, to whom,
    the server's answer, and what to do."""
    async with sessions() as session:
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
    client: Client,
    mission_id: str,
    month: str | None = None,
    today: date | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> MissionExplanation:
    """Why the CRA is not visible and why the payout has not arrived, month by month; with
    `sessions` (the ledger), the e-mails the SMTP server refused for good too.

    Raises `UnknownMission` when there is no such mission, `MissionUnavailable` when Temporal
    cannot answer."""
    today = today or datetime.now(PARIS).date()
    state = await _query(client, mission_workflow_id(mission_id), MissionState)
    if state is None:
        raise UnknownMission(mission_id)
    asked = [month] if month else mission_months(state, today)
    months = [key for each in asked for key in billing_periods(state, each)]
    found = []
    for each in months:
        cra = await _query(client, cra_workflow_id(mission_id, each), CraState)
        payout = await _query(client, payout_workflow_id(mission_id, each), PayoutState)
        found.append((each, cra, payout))
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
        emails_refused=await refused_emails(sessions, mission_id) if sessions else [],
    )


async def explain_with_ledger(
    client: Client, database_url: str, mission_id: str, month: str | None = None
) -> MissionExplanation:
    """For the CLI: `explain_mission` with its own connection to the ledger.

    Raises `MissionUnavailable` when PostgreSQL cannot answer."""
    engine = create_engine(database_url)
    try:
        return await explain_mission(client, mission_id, month, sessions=session_factory(engine))
    except OSError as exc:
        raise MissionUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
    except SQLAlchemyError as exc:
        raise MissionUnavailable(f"cannot read the outbox in PostgreSQL: {exc}") from exc
    finally:
        await engine.dispose()


def render_explanation(explanation: MissionExplanation) -> str:
    """Plain text for a support agent: one block per month."""
    offer = explanation.payment_offer.value if explanation.payment_offer else "—"
    lines = [
        f"Mission {explanation.mission_id} — étape {explanation.stage.value}, offre {offer}, "
        f"au {explanation.today.isoformat()}"
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
