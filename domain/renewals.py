"""Renewal and early termination rules: what may change, when, and which terms a month uses.

A renewal extends the mission to a new end date, possibly with a new TJM (the client's
request) and a new payment offer (the provider's acceptance: the only time the offer may
change). Once the client validates it, a new contract version governs the renewed period,
which starts the day after the current end date. Terms apply per CRA month: a month is billed
on the contract in force on its first mission day, so CRAs and payouts of earlier months keep
their TJM and offer.

An early termination moves the end date earlier; the last month's CRA becomes pro rata. It
may not cut into a month whose CRA is already validated (a validated CRA is immutable), nor
end the mission before a month whose CRA cycle is already open.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, timedelta
from decimal import Decimal

from domain.cra import month_bounds
from domain.offers import FIXED_DATE_OFFERS_FROM, check_offer_eligibility, is_fixed_date_offer
from domain.proposals import NotApplicable
from schemas.enums import MissionStage, PaymentOffer, RenewalStep
from schemas.mission import ContractTerms

RENEWABLE_STAGES = frozenset({MissionStage.IN_PROGRESS})
"""A renewal is requested while the mission runs (not once a renewal is already pending)."""
TERMINABLE_STAGES = frozenset(
    {MissionStage.TO_START, MissionStage.IN_PROGRESS, MissionStage.RENEWAL_PENDING}
)


def check_renewal_request(
    stage: MissionStage, current_end: date, new_end: date, new_tjm: Decimal | None
) -> None:
    if stage not in RENEWABLE_STAGES:
        raise NotApplicable(
            f"cannot request a renewal: the mission is {stage.value}; a renewal is requested "
            "while the mission is in progress and no other renewal is pending"
        )
    if new_end <= current_end:
        raise NotApplicable(
            f"the new end date {new_end.isoformat()} must be after the current end date "
            f"{current_end.isoformat()}"
        )
    if new_tjm is not None and new_tjm <= 0:
        raise NotApplicable("the new TJM must be greater than zero")


def check_renewal_step(step: RenewalStep | None, expected: RenewalStep, action: str) -> None:
    """The renewal must stand at `expected` for `action`; say where it stands otherwise."""
    if step is expected:
        return
    if step is None:
        raise NotApplicable(f"cannot {action}: no renewal is pending for this mission")
    raise NotApplicable(
        f"cannot {action}: the pending renewal is {step.value}, this applies when it is "
        f"{expected.value}"
    )


def check_renewal_offer(
    offer: PaymentOffer | None, current: PaymentOffer, signed_on: date, country: str
) -> PaymentOffer:
    """The offer of the renewed period: the provider's new choice, checked against the rules
    for a contract signed on `signed_on` (the renewal's own contract), or the current one."""
    if offer is None or offer is current:
        return current
    check_offer_eligibility(offer, signed_on, country)
    return offer


def check_declinable(step: RenewalStep | None) -> None:
    if step is None:
        raise NotApplicable("cannot decline a renewal: no renewal is pending for this mission")
    if step is RenewalStep.VALIDATED:
        raise NotApplicable(
            "cannot decline the renewal: the client already validated it; end the mission "
            "with mission.terminated instead"
        )


def earliest_termination(
    start: date, open_months: Sequence[str], validated_months: Collection[str]
) -> date:
    """The earliest end date an early termination may set: not before the start, not inside a
    month whose CRA is validated, not before a month whose CRA cycle is open."""
    earliest = start
    for month in open_months:
        first, last = month_bounds(month)
        earliest = max(earliest, last if month in validated_months else first)
    return earliest


def check_termination(
    stage: MissionStage,
    current_end: date,
    end: date,
    start: date,
    open_months: Sequence[str],
    validated_months: Collection[str],
) -> None:
    if stage not in TERMINABLE_STAGES:
        raise NotApplicable(
            f"cannot terminate the mission: it is {stage.value}; an early termination applies "
            "to a mission that is signed (to start), in progress or awaiting a renewal"
        )
    if end >= current_end:
        raise NotApplicable(
            f"the termination date {end.isoformat()} must be before the current end date "
            f"{current_end.isoformat()}; a mission simply ends on its end date"
        )
    earliest = earliest_termination(start, open_months, validated_months)
    if end < earliest:
        raise NotApplicable(
            f"the termination date {end.isoformat()} is too early: the mission may end on "
            f"{earliest.isoformat()} at the earliest (its start date, or the CRA of a month "
            "already open or validated covers the days before)"
        )


def check_new_contract(
    stage: MissionStage,
    current: ContractTerms,
    offer: PaymentOffer,
    signed_on: date,
    country: str,
    today: date,
    end: date,
    earliest: date,
) -> date:
    """A second `contract.signed` (issue 11 point 6): a provider whose contract predates the
    fixed-date offers gets them by signing a new contract, the other terms unchanged, on a
    mission in progress. Returns the day the new offer applies from (the day after the
    signature); raises `NotApplicable` saying why not. `earliest`: the first day new terms
    may take (not inside a period whose CRA is validated, nor a month before the one open)."""
    cutoff = FIXED_DATE_OFFERS_FROM.isoformat()
    signed = f"the contract was already signed on {current.signed_on.isoformat()}"
    if stage is MissionStage.RENEWAL_PENDING:
        raise NotApplicable(
            f"{signed} and a renewal is pending: the payment offer changes with it "
            "(renewal.accepted); sign a new contract once the renewal is settled"
        )
    if stage is not MissionStage.IN_PROGRESS:
        raise NotApplicable(
            f"{signed}; a new contract is accepted only on a mission in progress whose "
            f"contract was signed before {cutoff}, to move it to the fixed-date offers (the "
            f"mission is {stage.value}); otherwise the payment offer changes at renewal"
        )
    if current.signed_on >= FIXED_DATE_OFFERS_FROM:
        raise NotApplicable(
            f"the contract in force (v{current.version}) was signed on "
            f"{current.signed_on.isoformat()}, on or after {cutoff}: a new contract moves "
            "only an older contract to the fixed-date offers; the payment offer changes at "
            "renewal"
        )
    check_offer_eligibility(offer, signed_on, country)
    if not is_fixed_date_offer(offer):
        raise NotApplicable(
            f"a new contract on a mission in progress moves it to the fixed-date offers "
            f"(basic, express, flash), not to '{PaymentOffer(offer).value}'"
        )
    if signed_on > today:
        raise NotApplicable(
            f"the new contract is dated {signed_on.isoformat()}, after today "
            f"({today.isoformat()}, Europe/Paris): send it once signed"
        )
    starts = signed_on + timedelta(days=1)
    if starts > end:
        raise NotApplicable(
            f"the mission ends on {end.isoformat()}: a contract signed on "
            f"{signed_on.isoformat()} would apply from {starts.isoformat()}, after its end"
        )
    if starts < earliest:
        raise NotApplicable(
            f"a contract signed on {signed_on.isoformat()} would apply from "
            f"{starts.isoformat()}, but the days before {earliest.isoformat()} are billed "
            "already (a validated CRA, or an earlier month than the CRA now open): sign it "
            f"on {(earliest - timedelta(days=1)).isoformat()} or later"
        )
    return starts


def renewed_period_start(current_end: date) -> date:
    return current_end + timedelta(days=1)
