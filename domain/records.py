"""What the CRA cycle and the payout hand their activities, built in one place: the
workflows build them when an event applies, and the tests and benchmarks that call the
activities directly build the very same (tests/support/validations.py)."""

from __future__ import annotations

from datetime import date, datetime

from domain.carry_over import carry_context
from domain.clock import paris_date
from domain.cra import month_bounds
from domain.offers import offer_rule
from schemas.cra import CraInput, CraValidation
from schemas.events import CraSubmitted
from schemas.payouts import PayoutTerms


def cra_email_context(inp: CraInput, **extra: str) -> dict[str, str]:
    """The fields every e-mail of a CRA cycle fills in, and `extra`."""
    return {
        "mission_id": inp.mission_id,
        "month": inp.month,
        "provider_name": inp.provider.name,
        "client_name": inp.client_name,
        "tjm": str(inp.tjm),
        **extra,
    }


def cra_validation(
    inp: CraInput, cra: CraSubmitted, approver_id: str, at: datetime
) -> CraValidation:
    """The validation of the month's CRA `cra` by `approver_id` at `at`: what the legal
    record's transaction writes (activities.cra.record_cra_validation)."""
    first, last = month_bounds(inp.month)
    return CraValidation(
        key=f"cra.validated:{inp.mission_id}:{inp.month}",
        at=at,
        validated_on=paris_date(at),
        mission_id=inp.mission_id,
        month=inp.month,
        cra=cra,
        approver_id=approver_id,
        tjm=inp.tjm,
        payment_offer=inp.payment_offer,
        provider=inp.provider,
        client_name=inp.client_name,
        invoice_mode=inp.invoice_mode,
        service_start=max(first, inp.mission_start),
        service_end=min(last, inp.mission_end),
        terms_version=inp.terms_version,
        email_context=cra_email_context(inp, days=str(cra.days)),
    )


def payout_email_context(
    *,
    mission_id: str,
    month: str,
    provider_name: str,
    terms: PayoutTerms,
    invoice_number: str | None,
    payout_date: date | None,
    reason: str | None,
) -> dict[str, str]:
    """The fields every e-mail of a payout fills in."""
    return {
        "mission_id": mission_id,
        "month": month,
        "provider_name": provider_name,
        "offer": offer_rule(terms.offer).label,
        "invoice_number": invoice_number or "",
        "amount": str(terms.amount),
        "fee": str(terms.fee),
        "net_amount": str(terms.net_amount),
        "payout_date": payout_date.isoformat() if payout_date else "",
        "reason": reason or "",
        **carry_context(terms),
    }
