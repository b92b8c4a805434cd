"""When the provider is paid, and the facts that explain that date to support.

- Basic / Express: CRA validation + 60 / 30 calendar days, or the legal maximum of 60 days
  after the invoice date (L441-10 Code de commerce) when that is earlier. A date that is not
  a business day moves to the previous business day (product decision of 2026-11-30: never
  later than promised, never after the legal maximum). An invoice dated so early that no
  business day remains on or after the validation raises DomainError.
- Flash: 3 business days after validation.
- Immediate: the first business day on or after the later of validation and invoice date
  (for a manual import, the invoice exists only once imported).
- Back-to-back: no date, the provider is paid once the client has paid.

The invoice date is the validation date unless the provider imports the invoice later.

`payout_terms` is the one place a payout's terms (date, gross, fee, net, initial status) are
computed: the CRA validation calls it once, stores and e-mails the result and hands it to the
payout workflow, which pays it without recomputing; a manual import re-dates it with
`imported_invoice_terms`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.calendar import (
    NonBusinessDay,
    add_business_days,
    next_business_day_on_or_after,
    non_business_days_between,
    previous_business_day_on_or_before,
)
from domain.errors import DomainError
from domain.fees import offer_fee
from domain.formatting import date_fr, day_month_fr, long_date_fr
from domain.invoices import InvoiceAmounts
from domain.offers import offer_rule
from schemas.enums import PaymentOffer, PayoutStatus
from schemas.payouts import PayoutDateFacts, PayoutTerms

PAY_AT = time(9, 0)
"""Payouts are made at 09:00, Europe/Paris, on their day."""

LEGAL_MAX_PAYMENT_DAYS = 60
"""L441-10 Code de commerce: payment no later than 60 days after the invoice date."""

CLIENT_PAYMENT_TERM = timedelta(days=30)
"""The client's payment term of an invoice: due 30 days after its date, the default of
L441-10 Code de commerce when the contract sets none (60 days at most)."""


class Shift(StrEnum):
    """How the payout date was moved from the raw date.

    NEXT_BUSINESS_DAY: immediate payment started on a non-business day. PREVIOUS_BUSINESS_DAY:
    a Basic / Express date brought earlier, by a weekend or holiday, by the legal maximum, or
    both (`PayoutSchedule.capped_by_legal_limit` says when the maximum is what moved it)."""

    NONE = "none"
    NEXT_BUSINESS_DAY = "next_business_day"
    PREVIOUS_BUSINESS_DAY = "previous_business_day"


@dataclass(frozen=True, slots=True)
class PayoutSchedule:
    """A payout date and everything needed to explain it."""

    offer: PaymentOffer
    validated_on: date
    invoice_date: date
    payout_date: date | None
    """None for back-to-back: paid after the client's payment."""
    raw_date: date | None
    """The date before business-day rules: validation + N calendar days (Basic, Express,
    and Flash counted in calendar days), the start date for immediate payment."""
    shift: Shift
    skipped: tuple[NonBusinessDay, ...]
    """Non-business days that moved the date: between validation and payout for Flash; for
    Basic / Express the days from the payout (excluded) to the day it stood in for: the raw
    date, or the legal maximum when capped; from the start date for immediate payment."""
    legal_limit: date | None
    """Invoice date + 60 days, for Basic and Express."""
    capped_by_legal_limit: bool
    """True when the legal maximum made the payout earlier than the raw date's previous
    business day (the date the offer alone gives)."""

    @property
    def skipped_holidays(self) -> tuple[NonBusinessDay, ...]:
        return tuple(day for day in self.skipped if day.is_holiday)

    @property
    def shifted(self) -> bool:
        return self.shift is not Shift.NONE or bool(self.skipped)


def compute_payout(
    offer: PaymentOffer, validated_on: date, invoice_date: date | None = None
) -> PayoutSchedule:
    """The payout date of a CRA validated on `validated_on` under `offer`, with its reasons."""
    offer = PaymentOffer(offer)
    invoice_date = validated_on if invoice_date is None else invoice_date
    rule = offer_rule(offer)
    if offer is PaymentOffer.BACK_TO_BACK:
        return PayoutSchedule(
            offer=offer,
            validated_on=validated_on,
            invoice_date=invoice_date,
            payout_date=None,
            raw_date=None,
            shift=Shift.NONE,
            skipped=(),
            legal_limit=None,
            capped_by_legal_limit=False,
        )
    if rule.delay_calendar_days is not None:
        return _fixed_calendar_delay(offer, validated_on, invoice_date, rule.delay_calendar_days)
    if rule.delay_business_days is None:  # pragma: no cover - the rule table covers every offer
        raise DomainError(f"offer '{offer.value}' has no payout delay rule")
    if rule.delay_business_days == 0:
        start = max(validated_on, invoice_date)
        payout = next_business_day_on_or_after(start)
        return PayoutSchedule(
            offer=offer,
            validated_on=validated_on,
            invoice_date=invoice_date,
            payout_date=payout,
            raw_date=start,
            shift=Shift.NONE if payout == start else Shift.NEXT_BUSINESS_DAY,
            skipped=non_business_days_between(start, payout - timedelta(days=1)),
            legal_limit=None,
            capped_by_legal_limit=False,
        )
    payout = add_business_days(validated_on, rule.delay_business_days)
    return PayoutSchedule(
        offer=offer,
        validated_on=validated_on,
        invoice_date=invoice_date,
        payout_date=payout,
        raw_date=validated_on + timedelta(days=rule.delay_business_days),
        shift=Shift.NONE,
        skipped=non_business_days_between(validated_on + timedelta(days=1), payout),
        legal_limit=None,
        capped_by_legal_limit=False,
    )


def _fixed_calendar_delay(
    offer: PaymentOffer, validated_on: date, invoice_date: date, delay: int
) -> PayoutSchedule:
    raw = validated_on + timedelta(days=delay)
    limit = invoice_date + timedelta(days=LEGAL_MAX_PAYMENT_DAYS)
    promised = previous_business_day_on_or_before(raw)
    payout = min(promised, previous_business_day_on_or_before(limit))
    capped = payout < promised
    target = limit if capped else raw
    shift = Shift.NONE if payout == raw else Shift.PREVIOUS_BUSINESS_DAY
    if payout < validated_on:
        raise DomainError(
            f"invoice date {invoice_date.isoformat()} is too early: the legal limit of "
            f"{LEGAL_MAX_PAYMENT_DAYS} days after it ({limit.isoformat()}) leaves no business "
            f"day on or after the CRA validation ({validated_on.isoformat()}); check the "
            "invoice date"
        )
    skipped = non_business_days_between(payout + timedelta(days=1), target)
    return PayoutSchedule(
        offer=offer,
        validated_on=validated_on,
        invoice_date=invoice_date,
        payout_date=payout,
        raw_date=raw,
        shift=shift,
        skipped=skipped,
        legal_limit=limit,
        capped_by_legal_limit=capped,
    )


def _holidays_note(days: tuple[NonBusinessDay, ...]) -> str:
    holidays = [day for day in days if day.holiday is not None]
    if not holidays:
        return ""
    if len(holidays) == 1:
        return f" (le {day_month_fr(holidays[0].day)} est férié : {holidays[0].holiday})"
    listed = ", ".join(f"{day_month_fr(day.day)} {day.holiday}" for day in holidays)
    return f" (jours fériés : {listed})"


def _why_not_business_day(day: date, skipped: tuple[NonBusinessDay, ...]) -> str:
    for entry in skipped:
        if entry.day == day and entry.holiday is not None:
            return f"est férié ({entry.holiday})"
    return "tombe un week-end"


def explain_payout(schedule: PayoutSchedule) -> str:
    """One French sentence a support agent can read to the provider (fees not included)."""
    rule = offer_rule(schedule.offer)
    validated = f"CRA validé le {long_date_fr(schedule.validated_on)}"
    if schedule.payout_date is None:
        return (
            f"Offre {rule.label} : {validated}, paiement après l'encaissement de la facture "
            "par le client."
        )
    payout = long_date_fr(schedule.payout_date)
    if rule.delay_business_days == 0:
        if schedule.invoice_date > schedule.validated_on:
            start = f"{validated}, facture importée le {long_date_fr(schedule.invoice_date)}"
        else:
            start = validated
        when = (
            f"paiement le jour même, le {payout}"
            if schedule.shift is Shift.NONE
            else f"paiement le premier jour ouvré suivant, le {payout}"
        )
        title = rule.label[:1].upper() + rule.label[1:]
        return f"{title} : {start}, {when}{_holidays_note(schedule.skipped)}."
    if rule.delay_business_days is not None:
        return (
            f"Offre {rule.label} : {validated}, paiement {rule.delay_business_days} jours ouvrés "
            f"plus tard, le {payout}{_holidays_note(schedule.skipped)}."
        )
    raw = schedule.raw_date
    limit = schedule.legal_limit
    assert raw is not None and limit is not None  # set for every calendar-delay offer
    sentence = (
        f"Offre {rule.label} : {validated}, paiement {rule.delay_calendar_days} jours plus tard"
    )
    legal = (
        f"la limite légale de {LEGAL_MAX_PAYMENT_DAYS} jours après la facture du "
        f"{date_fr(schedule.invoice_date)} (art. L441-10 du Code de commerce)"
    )
    if schedule.capped_by_legal_limit:
        sentence += f" (le {long_date_fr(raw)}), ramené à {legal}"
        target = limit
    else:
        target = raw
    if schedule.payout_date == target:
        return f"{sentence} : le {payout}."
    reason = _why_not_business_day(target, schedule.skipped)
    others = _holidays_note(tuple(day for day in schedule.skipped if day.day != target))
    return (
        f"{sentence} : le {long_date_fr(target)} {reason}, paiement avancé au jour ouvré "
        f"précédent, le {payout}{others}."
    )


# --- The payout's terms: computed once, carried everywhere ---------------------------------


def client_due_date(invoice_date: date, term: timedelta = CLIENT_PAYMENT_TERM) -> date:
    """The day the client must pay the invoice by (printed on it; late from the next day)."""
    return invoice_date + term


def payout_terms(
    offer: PaymentOffer,
    validated_on: date,
    invoice_date: date | None,
    amounts: InvoiceAmounts,
    *,
    tjm: Decimal,
    days: Decimal,
    client_payment_term: timedelta = CLIENT_PAYMENT_TERM,
) -> PayoutTerms:
    """The payout of a CRA validated on `validated_on` and invoiced for `amounts`.

    `invoice_date` is None while a manually imported invoice awaits its import: the payout
    then waits for it, undated (its date may move the legal cap). Otherwise: back-to-back
    waits for the client's payment (no date); every other offer is scheduled on
    `compute_payout`'s date. The gross is the invoice's total incl. VAT, the fee the offer's
    on the days of service (`tjm` × `days`: never on expenses, overtime or corrections), the
    net their difference. Raises DomainError when an invoice dated too early leaves no
    business day for a fixed-date offer.
    """
    offer = PaymentOffer(offer)
    fee = offer_fee(offer, tjm, days)
    gross = amounts.total_incl_vat
    return PayoutTerms(
        offer=offer,
        validated_on=validated_on,
        service_amount=amounts.service,
        amount_excl_vat=amounts.total_excl_vat,
        vat_amount=amounts.vat,
        amount=gross,
        fee=fee,
        net_amount=gross - fee,
        **_dated(offer, validated_on, invoice_date, client_payment_term),
    )


def imported_invoice_terms(
    terms: PayoutTerms,
    issued_on: date,
    imported_on: date,
    *,
    client_payment_term: timedelta = CLIENT_PAYMENT_TERM,
) -> PayoutTerms:
    """`terms` once the manually imported invoice is accepted: the invoice's date is its own
    issue date (`issued_on`, written by the provider), from which the legal 60-day cap and the
    client's due date run, and the payout is dated from it. An invoice issued after its import
    day (`imported_on`, Paris) is refused (DomainError), as is one so early that the cap leaves
    no business day on or after the validation (compute_payout). Amounts do not change (the
    import matched the validated CRA)."""
    if issued_on > imported_on:
        raise DomainError(
            f"the imported invoice is dated {issued_on.isoformat()}, after its import on "
            f"{imported_on.isoformat()}: an invoice cannot be issued after it is imported; "
            "check issued_on and occurred_at"
        )
    dated = _dated(terms.offer, terms.validated_on, issued_on, client_payment_term)
    return terms.model_copy(update=dated)


def back_to_back_payout_date(client_paid_on: date) -> date:
    """Back-to-back: the first business day on or after the client's payment."""
    return next_business_day_on_or_after(client_paid_on)


def _dated(
    offer: PaymentOffer, validated_on: date, invoice_date: date | None, term: timedelta
) -> dict[str, Any]:
    """The date-dependent fields of PayoutTerms."""
    if invoice_date is None:
        return {
            "invoice_date": None,
            "client_due_on": None,
            "status": PayoutStatus.WAITING_INVOICE_IMPORT,
            "payout_date": None,
            "schedule": None,
        }
    schedule = compute_payout(offer, validated_on, invoice_date)
    return {
        "invoice_date": invoice_date,
        "client_due_on": client_due_date(invoice_date, term),
        "status": (
            PayoutStatus.WAITING_CLIENT_PAYMENT
            if schedule.payout_date is None
            else PayoutStatus.SCHEDULED
        ),
        "payout_date": schedule.payout_date,
        "schedule": schedule_facts(schedule),
    }


def schedule_facts(schedule: PayoutSchedule) -> PayoutDateFacts:
    """What support reads about a payout date: its raw date, shift, holidays, legal cap and
    the French sentence of `explain_payout`."""
    return PayoutDateFacts(
        raw_date=schedule.raw_date,
        shift=schedule.shift.value,
        skipped_holidays=[
            f"{day.day.isoformat()} ({day.holiday})" for day in schedule.skipped_holidays
        ],
        legal_limit=schedule.legal_limit,
        capped_by_legal_limit=schedule.capped_by_legal_limit,
        explanation=explain_payout(schedule),
    )
