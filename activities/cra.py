"""Monthly CRA transitions, and the one billing transaction of a validated CRA.

Every transition is keyed by its timeline row (`cra.<kind>:<mission>:<month>:<event id>`, or
`cra.validated:<mission>:<month>` for the validation, one per CRA): when the row already
exists the transition was committed before (a retry after a crash) and nothing is written
again, not even an invoice number; the outbox keys are returned again so that the send
activity can finish what the first attempt started.

The validation writes, in one transaction: the CRA as validated with its lines, the BPF, the
invoice (numbered from the issuer's gap-free counter for self-billing, or awaiting import),
the payout row, the timeline row and the provider's email — and the files of the BPF and the
invoice (`activities.billing_files`). The payout's terms (date, gross, fee, net, status) are
computed once, by `domain.payouts.payout_terms`: the payout row and the email read them, and
the result carries them to the payout workflow.

No negative invoice, no negative payout (`domain.carry_over`): under a per-mission lock, the
validation takes in every balance earlier months could not absorb (`carried_balances` rows
still owed), applies them to this month's invoice and payout, and writes what this month
cannot absorb, all in the same transaction. A retry finds the timeline row and reads back the
balances this month took in (`into_month`), so the amounts are the first attempt's.

A month-end surge runs this transaction for every mission at once: its statements are Core
statements on the tables, built once with bound parameters (the ORM adds nothing to them, and
a statement built per call is rebuilt and re-keyed for SQLAlchemy's compiled cache every time,
worker CPU that held the GIL the workflow tasks wait for).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert
from temporalio import activity

from activities.outbox import SendNow, keep_for_later
from activities.transitions import payout_schedule, queue_email, record_timeline
from db.models import (
    Bpf,
    CarriedBalanceKind,
    CarriedBalanceRow,
    Cra,
    CraLine,
    CraLineKind,
    Invoice,
    InvoiceKind,
    MissionEvent,
    Payout,
)
from db.sequences import next_number
from domain.carry_over import (
    MonthInvoice,
    carry_context,
    month_invoice,
    nothing_to_collect,
    settle_payout,
)
from domain.document_numbers import bpf_number, invoice_number
from domain.fees import service_amount
from domain.invoices import (
    DEFAULT_LATE_PAYMENT_RATE,
    DEFAULT_RECOVERY_INDEMNITY,
    parse_vat_rate,
)
from domain.money import to_money
from domain.offers import offer_rule
from domain.payouts import client_due_date, payout_terms
from schemas.activities import TransitionResult
from schemas.cra import CraTransition, CraValidation, CraValidationResult
from schemas.enums import CraStatus, InvoiceStatus
from schemas.events import CraSubmitted
from schemas.names import RECORD_CRA_TRANSITION, RECORD_CRA_VALIDATION
from schemas.payouts import CarriedBalance, CarryKind, PayoutTerms

_NOT_VALIDATED = Cra.status != CraStatus.VALIDATED

_CRAS: Table = Cra.__table__  # type: ignore[assignment]
_LINES: Table = CraLine.__table__  # type: ignore[assignment]
_BPFS: Table = Bpf.__table__  # type: ignore[assignment]
_INVOICES: Table = Invoice.__table__  # type: ignore[assignment]
_PAYOUTS: Table = Payout.__table__  # type: ignore[assignment]
_CARRIED: Table = CarriedBalanceRow.__table__  # type: ignore[assignment]
_EVENTS: Table = MissionEvent.__table__  # type: ignore[assignment]

_MISSION_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_VALIDATION = select(
    select(_EVENTS.c.id)
    .where(_EVENTS.c.idempotency_key == bindparam("key"))
    .scalar_subquery()
    .label("recorded")
).subquery("validation")
_RECORDED_AND_CARRIED = (
    select(
        _VALIDATION.c.recorded,
        _CARRIED.c.kind,
        _CARRIED.c.from_month,
        _CARRIED.c.amount,
        _CARRIED.c.invoice_number,
        _CARRIED.c.into_month,
    )
    .select_from(
        # One row with NULL balance columns when the mission has no balance.
        _VALIDATION.outerjoin(
            _CARRIED,
            and_(
                _CARRIED.c.mission_id == bindparam("mission_id"),
                or_(_CARRIED.c.into_month.is_(None), _CARRIED.c.into_month == bindparam("month")),
            ),
        )
    )
    .order_by(_CARRIED.c.from_month, _CARRIED.c.kind)
)
"""Whether the validation was recorded before (its timeline row's id), and the balances it
may take in: every one the mission still owes, and those the month took in (a retry reads
them back); one round trip, read under the mission's lock."""
_TAKE_IN = (
    update(_CARRIED)
    .where(
        _CARRIED.c.mission_id == bindparam("b_mission_id"),
        _CARRIED.c.from_month == bindparam("b_from_month"),
        _CARRIED.c.kind == bindparam("b_kind"),
        _CARRIED.c.into_month.is_(None),
    )
    .values(into_month=bindparam("into_month"))
)
_CARRY_OUT = insert(_CARRIED).on_conflict_do_nothing()
_ISSUE_BPF = insert(_BPFS).on_conflict_do_nothing().returning(_BPFS.c.number)
_MONTH_BPF = select(_BPFS.c.number).where(
    _BPFS.c.mission_id == bindparam("mission_id"), _BPFS.c.month == bindparam("month")
)
_OF_THE_MONTH = (
    _INVOICES.c.mission_id == bindparam("mission_id"),
    _INVOICES.c.month == bindparam("month"),
)
_MONTH_INVOICE = select(_INVOICES.c.id, _INVOICES.c.number, _INVOICES.c.issued_on).where(
    *_OF_THE_MONTH
)
_NEW_INVOICE = insert(_INVOICES).returning(_INVOICES.c.id)
_LATEST_INVOICE_DATE = select(func.max(_INVOICES.c.issued_on)).where(
    _INVOICES.c.issuer_siren == bindparam("issuer_siren"),
    _INVOICES.c.kind == InvoiceKind.GENERATED,
)
_NEW_PAYOUT = insert(_PAYOUTS).on_conflict_do_nothing(
    index_elements=[_PAYOUTS.c.mission_id, _PAYOUTS.c.month]
)
_CLEAR_LINES = delete(_LINES).where(_LINES.c.cra_id == bindparam("cra_id"))
_ADD_LINES = insert(_LINES)
_LINE_COLUMNS = ("quantity", "unit_price", "vat_rate", "receipt_ref", "corrects_month")


class CraActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        late_payment_rate: Decimal = DEFAULT_LATE_PAYMENT_RATE,
        recovery_indemnity: Decimal = DEFAULT_RECOVERY_INDEMNITY,
        render_task_queue: str | None = None,
        send_now: SendNow = keep_for_later,
    ) -> None:
        """`render_task_queue`: where the cycle then renders the month's files (None: the
        cycle's own task queue); `send_now` sends a transition's e-mails after its commit
        (activities.outbox)."""
        self._sessions = sessions
        self._send_now = send_now
        self._render_task_queue = render_task_queue
        self._late_payment_rate = late_payment_rate
        self._recovery_indemnity = recovery_indemnity

    @activity.defn(name=RECORD_CRA_TRANSITION)
    async def record_cra_transition(self, t: CraTransition) -> TransitionResult:
        async with self._sessions.begin() as session:
            applied = await record_timeline(
                session,
                key=t.key,
                mission_id=t.mission_id,
                kind=f"cra.{t.kind}",
                at=t.at,
                data={"month": t.month, "status": t.status.value, "comment": t.comment},
            )
            if applied and t.kind == "submitted":
                assert t.cra is not None, "a submission carries its CRA"
                cra_id = await _upsert_cra(
                    session,
                    t.cra,
                    status=CraStatus.SUBMITTED,
                    submitted_at=t.at,
                    rejected_at=None,
                    rejection_comment=None,
                )
                if cra_id is not None:
                    await _write_lines(session, cra_id, t.cra, tjm=None)
            elif applied and t.kind == "rejected":
                await session.execute(
                    update(Cra)
                    .where(Cra.mission_id == t.mission_id, Cra.month == t.month, _NOT_VALIDATED)
                    .values(
                        status=CraStatus.REJECTED,
                        rejected_at=t.at,
                        rejection_comment=t.comment,
                        approver_id=t.approver_id,
                    )
                )
            keys = []
            if t.email_template is not None:
                keys.append(
                    await queue_email(
                        session,
                        key=f"{t.key}:provider",
                        mission_id=t.mission_id,
                        recipients=[t.provider_email],
                        template=t.email_template,
                        context=dict(t.email_context),
                    )
                )
        return TransitionResult(applied=applied, outbox_keys=await self._send_now(keys))

    @activity.defn(name=RECORD_CRA_VALIDATION)
    async def record_cra_validation(self, v: CraValidation) -> CraValidationResult:
        async with self._sessions.begin() as session:
            # One validation of the mission at a time reads and writes its carried balances.
            await session.execute(_MISSION_LOCK, {"key": f"carried_balances:{v.mission_id}"})
            carried = await _carried_into(session, v)
            month = month_invoice(v.cra, v.tjm, regime=v.provider.vat_regime, carried=carried)
            amounts = month.amounts
            applied = await record_timeline(
                session,
                key=v.key,
                mission_id=v.mission_id,
                kind="cra.validated",
                at=v.at,
                data={
                    "month": v.month,
                    "days": str(v.cra.days),
                    "approver_id": v.approver_id,
                    "amount_excl_vat": str(amounts.total_excl_vat),
                },
            )
            if applied:
                result = await self._bill(session, v, month, carried)
            else:
                result = await _written(session, v, month, carried)
            terms = result.terms
            result.outbox_keys.append(
                await queue_email(
                    session,
                    key=f"{v.key}:provider",
                    mission_id=v.mission_id,
                    recipients=[v.provider.email],
                    template="cra_validated",
                    context={
                        **v.email_context,
                        "bpf_number": result.bpf_number,
                        "invoice_number": result.invoice_number or "",
                        "amount": str(terms.amount),
                        "vat_mention": amounts.vat_mention or "",
                        "payout_date": terms.payout_date.isoformat() if terms.payout_date else "",
                        "payout_status": terms.status.value,
                        "offer": offer_rule(v.payment_offer).label,
                        **carry_context(terms),
                    },
                )
            )
        # Its files are rendered next, by their own activity (activities.billing_files).
        result.render_task_queue = self._render_task_queue
        result.outbox_keys = await self._send_now(result.outbox_keys)
        activity.logger.info(
            "CRA %s %s validated (new: %s), invoice %s, payout %s",
            v.mission_id,
            v.month,
            applied,
            result.invoice_number,
            terms.payout_date,
        )
        return result

    async def _bill(
        self,
        session: AsyncSession,
        v: CraValidation,
        month: MonthInvoice,
        carried: list[CarriedBalance],
    ) -> CraValidationResult:
        amounts = month.amounts
        cra_id = await _upsert_cra(
            session,
            v.cra,
            status=CraStatus.VALIDATED,
            validated_at=v.at,
            validated_on=v.validated_on,
            approver_id=v.approver_id,
            terms_version=v.terms_version,
        )
        if cra_id is not None:
            await _write_lines(session, cra_id, v.cra, tjm=v.tjm)
        issued = await session.scalar(
            _ISSUE_BPF,
            {
                "number": bpf_number(v.mission_id, v.month),
                "mission_id": v.mission_id,
                "month": v.month,
                "issued_on": v.validated_on,
                "amount_excl_vat": amounts.total_excl_vat,
            },
        )
        bpf = issued if issued is not None else await _bpf_number(session, v)
        invoice_id, number, invoice_date = await self._invoice(session, v, month)
        terms = _terms(v, invoice_date, month, carried, number)
        await _write_carry(session, v, terms)
        await session.execute(
            _NEW_PAYOUT,
            {
                "mission_id": v.mission_id,
                "month": v.month,
                "invoice_id": invoice_id,
                "offer": terms.offer,
                "amount": terms.amount,
                "fee": terms.fee,
                "fee_deducted": terms.fee_deducted,
                "fee_carried_out": terms.fee_carried_out,
                "net_amount": terms.net_amount,
                "due_on": terms.payout_date,
                "status": terms.status,
                "schedule": payout_schedule(terms),
            },
        )
        return CraValidationResult(applied=True, bpf_number=bpf, invoice_number=number, terms=terms)

    async def _invoice(
        self, session: AsyncSession, v: CraValidation, month: MonthInvoice
    ) -> tuple[int, str | None, date | None]:
        """The month's invoice row: (id, number, issue date). A number is allocated only
        when no invoice exists yet, so a number is never spent twice. A month entirely
        absorbed by carried balances still gets its invoice, of 0 € (continuous numbering)."""
        amounts = month.amounts
        month_of = {"mission_id": v.mission_id, "month": v.month}
        existing = (await session.execute(_MONTH_INVOICE, month_of)).first()
        if existing is not None:
            return existing.id, existing.number, existing.issued_on
        values: dict[str, Any] = {
            "issuer_siren": v.provider.siren,
            "mission_id": v.mission_id,
            "month": v.month,
            "service_start": v.service_start,
            "service_end": v.service_end,
            "vat_regime": amounts.regime,
            "vat_mention": amounts.vat_mention,
            # A generated invoice's amounts; an imported one is checked against them.
            "amount_excl_vat": amounts.total_excl_vat,
            "vat_amount": amounts.vat,
            "amount_incl_vat": amounts.total_incl_vat,
            "late_payment_rate": self._late_payment_rate,
            "recovery_indemnity": to_money(self._recovery_indemnity),
        }
        number: str | None = None
        issued_on: date | None = None
        if v.invoice_mode == "generated":
            number = invoice_number(v.provider.siren, await next_number(session, v.provider.siren))
            issued_on = await _issue_date(session, v.provider.siren, v.validated_on)
            values.update(
                kind=InvoiceKind.GENERATED,
                status=InvoiceStatus.IN_PAYMENT,
                number=number,
                issued_on=issued_on,
                due_on=client_due_date(issued_on),
            )
        else:  # no number yet: the provider imports its invoice
            values.update(kind=InvoiceKind.IMPORTED, status=InvoiceStatus.AWAITING_IMPORT)
        invoice_id = (await session.execute(_NEW_INVOICE, values)).scalar_one()
        return invoice_id, number, issued_on


async def _issue_date(session: AsyncSession, issuer_siren: str, validated_on: date) -> date:
    """The invoice's date: the validation day, or the issuer's latest invoice date when a
    validation that happened earlier is processed late (a backlog, an outage).

    Numbers are continuous and in date order per issuer (docs/design.md): called under the
    issuer's counter-row lock (`next_number`), so no other invoice of the issuer is numbered
    between this read and the insert.
    """
    latest = (
        await session.execute(_LATEST_INVOICE_DATE, {"issuer_siren": issuer_siren})
    ).scalar_one()
    return validated_on if latest is None else max(validated_on, latest)


def _terms(
    v: CraValidation,
    invoice_date: date | None,
    month: MonthInvoice,
    carried: list[CarriedBalance],
    number: str | None,
) -> PayoutTerms:
    """The payout's terms (domain.payouts): undated while the invoice awaits its import (its
    date may move the legal cap), waiting for the client's payment under back-to-back; its
    net never below zero, with the balances taken in and carried out (domain.carry_over)."""
    terms = payout_terms(
        v.payment_offer, v.validated_on, invoice_date, month.amounts, tjm=v.tjm, days=v.cra.days
    )
    settled = settle_payout(terms.amount, terms.fee, carried)
    out = [
        CarriedBalance(kind=kind, from_month=v.month, amount=amount, invoice_number=number)
        for kind, amount in (
            (CarryKind.INVOICE, month.carried_out),
            (CarryKind.FEE, settled.carried_out),
        )
        if amount > 0
    ]
    settled_terms = terms.model_copy(
        update={"net_amount": settled.net, "carried_in": carried, "carried_out": out}
    )
    return nothing_to_collect(settled_terms)


async def _carried_into(session: AsyncSession, v: CraValidation) -> list[CarriedBalance]:
    """The balances this month takes in: every one still owed by the mission (a first
    attempt, under the mission's lock), or those it took in already (a retry: its timeline
    row exists)."""
    rows = (
        await session.execute(
            _RECORDED_AND_CARRIED,
            {"key": v.key, "mission_id": v.mission_id, "month": v.month},
        )
    ).all()
    retry = rows[0].recorded is not None
    return [
        CarriedBalance(
            kind=CarryKind(row.kind.value),
            from_month=row.from_month,
            amount=row.amount,
            invoice_number=row.invoice_number,
            into_month=v.month,
        )
        for row in rows
        if row.kind is not None
        and (row.into_month == v.month if retry else row.into_month is None)
        and row.from_month != v.month
    ]


async def _write_carry(session: AsyncSession, v: CraValidation, terms: PayoutTerms) -> None:
    """The ledger: the balances taken in are marked so, what this month carries out is owed."""
    for balance in terms.carried_in:
        await session.execute(
            _TAKE_IN,
            {
                "b_mission_id": v.mission_id,
                "b_from_month": balance.from_month,
                "b_kind": CarriedBalanceKind(balance.kind.value),
                "into_month": v.month,
            },
        )
    for balance in terms.carried_out:
        await session.execute(
            _CARRY_OUT,
            {
                "mission_id": v.mission_id,
                "from_month": v.month,
                "kind": CarriedBalanceKind(balance.kind.value),
                "amount": balance.amount,
                "invoice_number": balance.invoice_number,
            },
        )


async def _written(
    session: AsyncSession, v: CraValidation, month: MonthInvoice, carried: list[CarriedBalance]
) -> CraValidationResult:
    """What the first, committed attempt wrote: read back (the invoice's number and date),
    never written again; the terms follow from the same facts as the first time."""
    invoice = (
        await session.execute(_MONTH_INVOICE, {"mission_id": v.mission_id, "month": v.month})
    ).first()
    number = invoice.number if invoice else None
    issued_on = invoice.issued_on if invoice else None
    return CraValidationResult(
        applied=False,
        bpf_number=await _bpf_number(session, v),
        invoice_number=number,
        terms=_terms(v, issued_on, month, carried, number),
    )


async def _bpf_number(session: AsyncSession, v: CraValidation) -> str:
    """The month's BPF number as its row holds it: a BPF keeps the number it was issued with
    (domain.document_numbers computes the number of a new one)."""
    stored = (
        await session.execute(_MONTH_BPF, {"mission_id": v.mission_id, "month": v.month})
    ).scalar_one_or_none()
    return stored if stored is not None else bpf_number(v.mission_id, v.month)


async def _upsert_cra(session: AsyncSession, cra: CraSubmitted, **values: Any) -> int | None:
    """Insert or update the month's CRA row unless it is validated; its id, None when the
    row is validated already (immutable)."""
    result = await session.execute(
        _cra_upsert(tuple(sorted(values))),
        {"mission_id": cra.mission_id, "month": cra.month, "days": cra.days, **values},
    )
    return result.scalar_one_or_none()


@cache
def _cra_upsert(columns: tuple[str, ...]) -> ReturningInsert[int]:
    """The upsert of a CRA row setting `days` and `columns` (its values are the execution's
    parameters, the update sets what the insert would have): one statement per transition
    kind, built once."""
    statement = insert(_CRAS)
    return statement.on_conflict_do_update(
        index_elements=[_CRAS.c.mission_id, _CRAS.c.month],
        set_={name: statement.excluded[name] for name in ("days", *columns)},
        where=_CRAS.c.status != CraStatus.VALIDATED,
    ).returning(_CRAS.c.id)


async def _write_lines(
    session: AsyncSession, cra_id: int, cra: CraSubmitted, *, tjm: Decimal | None
) -> None:
    """Replace the CRA's lines: days, expenses, overtime, corrections, in that order."""
    await session.execute(_CLEAR_LINES, {"cra_id": cra_id})
    rows: list[dict[str, Any]] = [
        {
            "kind": CraLineKind.DAYS,
            "label": "Jours travaillés",
            "quantity": cra.days,
            "unit_price": tjm,
            "amount": service_amount(tjm, cra.days) if tjm is not None else to_money(0),
        }
    ]
    rows += [
        {
            "kind": CraLineKind.EXPENSE,
            "label": line.label,
            "amount": line.amount,
            "vat_rate": parse_vat_rate(line.vat_rate),
            "receipt_ref": line.receipt_ref,
        }
        for line in cra.expenses
    ]
    rows += [
        {"kind": CraLineKind.OVERTIME, "label": line.label, "amount": line.amount}
        for line in cra.overtime
    ]
    rows += [
        {
            "kind": CraLineKind.CORRECTION,
            "label": line.label,
            "amount": line.amount,
            "corrects_month": line.corrects_month,
        }
        for line in cra.corrections
    ]
    blank = dict.fromkeys(_LINE_COLUMNS)
    await session.execute(
        _ADD_LINES,
        [{**blank, "cra_id": cra_id, "position": i, **row} for i, row in enumerate(rows, 1)],
    )
