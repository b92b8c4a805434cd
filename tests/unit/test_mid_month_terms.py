"""Terms that change inside a month (issue 11 points 5 and 6), the pure rules: a month is
split into billing periods where a contract version with another TJM, offer or invoicing
begins; each period has its key, bounds, terms, opening day and BPF number; a legacy
contract moves to the fixed-date offers by a second `contract.signed` on a mission in
progress, and every other second signature is refused saying why."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from domain import mission_rules as rules
from domain.cra import check_days, due_day, period_key, period_month, period_part
from domain.document_numbers import bpf_number
from domain.errors import DomainError, InvalidCra
from domain.mission_rules import Context
from schemas.enums import MissionStage, PaymentOffer, RenewalStep
from schemas.events import ContractSigned, ProposalSubmitted
from schemas.mission import ContractTerms, MissionState, Renewal
from starter.support.explain import billing_periods, explain_month
from tests.support.factories import proposal_submitted

PID = "P-1"
PROPOSAL = ProposalSubmitted.model_validate(proposal_submitted(PID, rfp_id="RFP-1"))
LEGACY = date(2025, 3, 3)


def terms(version: int, start: date, end: date, tjm: str, offer: PaymentOffer) -> ContractTerms:
    return ContractTerms(
        version=version,
        signed_on=LEGACY if version == 1 else start,
        payment_offer=offer,
        special_conditions_ref="CP-1",
        tjm=Decimal(tjm),
        start_date=start,
        end_date=end,
    )


def mission(
    start: date, end: date, offer: PaymentOffer = PaymentOffer.BACK_TO_BACK
) -> MissionState:
    state = rules.initial_state(PROPOSAL, datetime(2026, 6, 1, tzinfo=UTC))
    state.stage = MissionStage.IN_PROGRESS
    state.start_date, state.end_date, state.started_on = start, end, start
    state.tjm = Decimal("650.00")
    state.legal.contract = terms(1, start, end, "650.00", offer)
    return state


def ctx(day: date) -> Context:
    return Context(proposal=PROPOSAL, now=datetime(day.year, day.month, day.day, 9, tzinfo=UTC))


def test_period_keys_name_the_month_then_its_later_periods() -> None:
    assert period_key("2026-07", 1) == "2026-07" and period_key("2026-07", 2) == "2026-07-p2"
    assert (period_month("2026-07-p2"), period_part("2026-07-p2")) == ("2026-07", 2)
    assert period_part("2026-07") == 1
    with pytest.raises(InvalidCra):
        period_key("2026-07", 0)
    with pytest.raises(InvalidCra):
        period_month("2026-07-p1")  # the first period is the month itself


def test_a_renewal_with_a_new_tjm_from_the_16th_splits_the_month_in_two_periods() -> None:
    state = mission(date(2026, 7, 1), date(2026, 7, 15), PaymentOffer.EXPRESS)
    state.renewals.append(
        terms(2, date(2026, 7, 16), date(2026, 8, 31), "750.00", PaymentOffer.FLASH)
    )
    state.end_date = date(2026, 8, 31)
    first, second = rules.month_periods(state, "2026-07")
    assert (first.key, first.start, first.end, first.terms and first.terms.tjm) == (
        "2026-07",
        date(2026, 7, 1),
        date(2026, 7, 15),
        Decimal("650.00"),
    )
    assert (second.key, second.start, second.end, second.terms and second.terms.tjm) == (
        "2026-07-p2",
        date(2026, 7, 16),
        date(2026, 7, 31),
        Decimal("750.00"),
    )
    assert [p.key for p in rules.month_periods(state, "2026-08")] == ["2026-08"]
    assert rules.next_cra_month(state, ["2026-07"]) == "2026-07-p2"
    assert rules.cra_opens_on(state, "2026-07-p2") == date(2026, 7, 16)
    # Each period's cycle bills its own days at its own terms; the first part is due on the
    # last business day of its own days (Wednesday 15 July), not at the month's end.
    part = rules.cra_input(state, PROPOSAL, "2026-07-p2")
    assert (part.tjm, part.payment_offer, part.terms_version) == (Decimal("750.00"), "flash", 2)
    assert (part.mission_start, part.mission_end) == (date(2026, 7, 16), date(2026, 8, 31))
    whole = rules.cra_input(state, PROPOSAL, "2026-07")
    assert (whole.tjm, whole.payment_offer, whole.mission_end) == (
        Decimal("650.00"),
        "express",
        date(2026, 7, 15),
    )
    assert due_day("2026-07", whole.mission_start, whole.mission_end) == date(2026, 7, 15)
    assert check_days(Decimal("11"), "2026-07-p2", part.mission_start, part.mission_end)
    with pytest.raises(InvalidCra, match="only 16 calendar days"):
        check_days(Decimal("17"), "2026-07-p2", part.mission_start, part.mission_end)
    # Support: July has two periods; before the 16th the second is not open yet, and says when.
    assert billing_periods(state, "2026-07") == ["2026-07", "2026-07-p2"]
    early = explain_month(state, "2026-07-p2", None, None, date(2026, 7, 10))
    assert early.offer is PaymentOffer.FLASH and early.cra[0].code == "month_not_begun"
    assert early.cra[0].facts["opens_on"] == "2026-07-16"


def test_a_renewal_on_the_same_terms_keeps_the_month_whole() -> None:
    state = mission(date(2026, 7, 1), date(2026, 7, 15))
    state.renewals.append(
        terms(2, date(2026, 7, 16), date(2026, 8, 31), "650.00", PaymentOffer.BACK_TO_BACK)
    )
    state.end_date = date(2026, 8, 31)
    (whole,) = rules.month_periods(state, "2026-07")
    assert (whole.key, whole.start, whole.end) == ("2026-07", date(2026, 7, 1), date(2026, 7, 31))


def test_each_period_has_its_own_bpf_number_within_35_characters() -> None:
    long_id = "x." * 50
    numbers = {bpf_number(m, k) for m in ("P-1", long_id) for k in ("2026-07", "2026-07-p2")}
    assert len(numbers) == 4 and all(len(n) <= 35 for n in numbers)
    assert bpf_number("P-1", "2026-07-p2") == "BPF-P-1-2026-07-p2"


def test_a_legacy_contract_moves_to_fixed_dates_from_the_day_after_the_new_signature() -> None:
    state = mission(date(2026, 6, 1), date(2026, 12, 31))
    state.cra_months, state.validated_months = ["2026-06", "2026-07"], ["2026-06"]
    signed = ContractSigned(
        proposal_id=PID,
        signed_on=date(2026, 7, 15),
        payment_offer=PaymentOffer.FLASH,
        special_conditions_ref="CP-2",
    )
    step = rules.contract_signed(state, signed, ctx(date(2026, 7, 15)))
    new = state.current_terms
    assert new is not None and step.changes == {"contract": new}
    assert (new.version, new.start_date, new.end_date, new.tjm, new.payment_offer) == (
        2,
        date(2026, 7, 16),
        date(2026, 12, 31),
        Decimal("650.00"),
        PaymentOffer.FLASH,
    )
    assert step.payment_offer is PaymentOffer.FLASH
    # The open July cycle now ends on the 15th; the 16th onwards is a period of its own.
    assert step.period_changed == ["2026-07"]
    assert rules.cycle_bounds(state, "2026-07")[1] == date(2026, 7, 15)
    assert [p.key for p in rules.month_periods(state, "2026-07")] == ["2026-07", "2026-07-p2"]
    assert {e.role for e in step.emails} == {"provider", "client"}


@pytest.mark.parametrize(
    ("change", "signed_on", "offer", "why"),
    [
        ("recent", date(2026, 7, 15), PaymentOffer.FLASH, "on or after 2025-04-28"),
        ("abroad", date(2026, 7, 15), PaymentOffer.FLASH, "outside France"),
        ("legacy offer", date(2026, 7, 15), PaymentOffer.IMMEDIATE, "only for contracts"),
        ("old date", date(2025, 4, 1), PaymentOffer.FLASH, "before 2025-04-28"),
        ("future", date(2026, 7, 20), PaymentOffer.FLASH, "after today"),
        ("validated", date(2026, 6, 10), PaymentOffer.FLASH, "billed already"),
        ("renewal", date(2026, 7, 15), PaymentOffer.FLASH, "a renewal is pending"),
        ("to start", date(2026, 7, 15), PaymentOffer.FLASH, "mission in progress"),
    ],
)
def test_other_second_contracts_are_refused_saying_why(
    change: str, signed_on: date, offer: PaymentOffer, why: str
) -> None:
    state = mission(date(2026, 6, 1), date(2026, 12, 31))
    state.cra_months, state.validated_months = ["2026-06", "2026-07"], ["2026-06"]
    proposal = PROPOSAL
    if change == "recent":
        state.legal.contract = terms(1, date(2026, 6, 1), date(2026, 12, 31), "650", offer)
        state.legal.contract.signed_on = date(2026, 5, 1)
    if change == "abroad":
        data = proposal_submitted(PID, rfp_id="RFP-1")
        data["provider"]["country"] = "BE"
        data["provider"]["address"]["country"] = "BE"
        data["provider"]["address"]["postal_code"] = "1000"
        proposal = ProposalSubmitted.model_validate(data)
    if change == "renewal":
        state.stage = MissionStage.RENEWAL_PENDING
    if change == "to start":
        state.stage = MissionStage.TO_START
    before = state.model_copy(deep=True)
    signed = ContractSigned(
        proposal_id=PID, signed_on=signed_on, payment_offer=offer, special_conditions_ref="CP-2"
    )
    context = Context(proposal=proposal, now=ctx(date(2026, 7, 15)).now)
    with pytest.raises(DomainError, match=why):  # NotApplicable, IneligibleOffer: a 409
        rules.contract_signed(state, signed, context)
    assert state == before


def test_a_same_terms_renewal_after_the_months_cra_is_validated_bills_its_days_apart() -> None:
    state = mission(date(2026, 7, 1), date(2026, 7, 15))
    state.cra_months, state.validated_months = ["2026-07"], ["2026-07"]
    state.renewal = Renewal(
        step=RenewalStep.VALIDATED,
        requested_at=datetime(2026, 7, 10, tzinfo=UTC),
        new_end_date=date(2026, 8, 31),
        payment_offer=PaymentOffer.BACK_TO_BACK,
        approver_id="APR-1",
    )
    state.legal.provider_compliant = True
    (effective,) = rules.progress(state, ctx(date(2026, 7, 20)))
    assert effective.kind == "renewal.effective" and effective.period_changed == []
    # July's validated CRA keeps the 1st-15th; the 16th-31st get a CRA of their own.
    assert [(p.key, p.start, p.end) for p in rules.month_periods(state, "2026-07")] == [
        ("2026-07", date(2026, 7, 1), date(2026, 7, 15)),
        ("2026-07-p2", date(2026, 7, 16), date(2026, 7, 31)),
    ]
    assert rules.next_cra_month(state, state.cra_months) == "2026-07-p2"
