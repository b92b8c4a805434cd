"""The mission's decisions (domain/mission_rules.py), without a server: state and event in,
the transition out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from domain import mission_rules as rules
from domain.clock import paris_instant
from domain.mission_rules import Context
from domain.proposals import NotApplicable
from schemas.compliance import ComplianceStatus
from schemas.cra import CraClosed
from schemas.enums import CraStatus, MissionStage, PaymentOffer, ProposalStatus, RenewalStep
from schemas.events import (
    ContractSigned,
    Invoicing,
    MissionTerminated,
    ProposalRated,
    ProposalRead,
    ProposalRetained,
    ProposalSubmitted,
    ProposalUpdated,
    PurchaseOrderConfirmed,
    RenewalAccepted,
    RenewalRequested,
    RenewalValidated,
)
from schemas.mission import MissionState
from tests.support.factories import proposal_submitted

PID = "P-1"
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
PROPOSAL = ProposalSubmitted.model_validate(proposal_submitted(PID, rfp_id="RFP-1"))


def ctx(now: datetime = NOW) -> Context:
    return Context(proposal=PROPOSAL, now=now)


def apply(state: MissionState, step: rules.Step) -> None:
    """What the workflow does with a step's stage."""
    stage = rules.stage_change(state, step.stage)
    if stage is not None:
        state.stage = stage


def compliant(state: MissionState, until: date | None = None) -> None:
    status = ComplianceStatus(
        siren=PROPOSAL.provider.siren, on=date(2026, 11, 20), compliant=True, valid_until=until
    )
    rules.compliance_changed(state, status)


def retained() -> MissionState:
    state = rules.initial_state(PROPOSAL, NOW)
    apply(state, rules.proposal_read(state, ProposalRead(proposal_id=PID), ctx()))
    rated = ProposalRated(proposal_id=PID, interesting=True)
    apply(state, rules.proposal_rated(state, rated, ctx()))
    apply(state, rules.proposal_retained(state, ProposalRetained(proposal_id=PID), ctx()))
    return state


def progress(state: MissionState, context: Context) -> None:
    """Apply what the state and the clock now allow."""
    for step in rules.progress(state, context):
        apply(state, step)


def sign(state: MissionState, invoicing: Invoicing = "platform") -> None:
    """The contract signed on the Basic offer on 2026-11-20, and what that allows at once."""
    signed = ContractSigned(
        proposal_id=PID,
        signed_on=date(2026, 11, 20),
        payment_offer=PaymentOffer.BASIC,
        special_conditions_ref="CP-1",
        invoicing=invoicing,
    )
    apply(state, rules.contract_signed(state, signed, ctx()))
    progress(state, ctx())


def in_progress(invoicing: Invoicing = "platform") -> MissionState:
    """A mission contracted on the Basic offer, started on 2026-12-01."""
    state = retained()
    compliant(state)
    po = PurchaseOrderConfirmed(proposal_id=PID, po_number="PO-1")
    apply(state, rules.purchase_order_confirmed(state, po, ctx()))
    sign(state, invoicing)
    assert state.stage is MissionStage.TO_START
    progress(state, ctx(paris_instant(date(2026, 12, 1))))
    return state


def test_the_proposal_stages_follow_its_status_until_legal_verification() -> None:
    state = rules.initial_state(PROPOSAL, NOW)
    assert (state.stage, state.proposal_status) == (MissionStage.PROPOSAL, ProposalStatus.SENT)
    step = rules.proposal_read(state, ProposalRead(proposal_id=PID), ctx())
    assert step.kind == "proposal.read" and step.key is None  # keyed by the update id
    assert [e.template for e in step.emails] == ["proposal_read"]
    state = retained()
    assert state.stage is MissionStage.LEGAL_VERIFICATION


def test_retaining_the_proposal_subscribes_to_the_provider() -> None:
    state = rules.initial_state(PROPOSAL, NOW)
    state.proposal_status = ProposalStatus.INTERESTING
    step = rules.proposal_retained(state, ProposalRetained(proposal_id=PID), ctx())
    assert step.watch_provider and state.proposal_status is ProposalStatus.RETAINED
    assert {e.role for e in step.emails} == {"provider", "client"}


def test_a_refused_event_changes_nothing_and_says_why() -> None:
    state = rules.initial_state(PROPOSAL, NOW)
    before = state.model_copy(deep=True)
    with pytest.raises(NotApplicable, match="event for mission P-2 sent to mission P-1"):
        rules.proposal_read(state, ProposalRead(proposal_id="P-2"), ctx())
    with pytest.raises(NotApplicable, match=r"the TJM is already 650\.00 €"):
        rules.proposal_updated(state, ProposalUpdated(proposal_id=PID, tjm=Decimal("650")), ctx())
    assert state == before


def test_a_tjm_update_is_recorded_with_the_old_and_new_rates() -> None:
    state = rules.initial_state(PROPOSAL, NOW)
    step = rules.proposal_updated(
        state, ProposalUpdated(proposal_id=PID, tjm=Decimal("700")), ctx()
    )
    assert step.detail == "TJM 650.00 € → 700.00 €" and step.changes == {"tjm": Decimal("700")}
    assert state.tjm == Decimal("700") and step.emails[0].context["tjm"] == "700.00"


def test_legal_verification_completes_then_the_mission_starts_on_its_start_date() -> None:
    state = retained()
    assert rules.progress(state, ctx()) == []  # nothing yet: documents, PO, contract missing
    state = in_progress()
    assert state.stage is MissionStage.IN_PROGRESS
    assert state.ready_on == date(2026, 11, 20) and state.started_on == date(2026, 12, 1)


def test_a_start_with_lapsed_documents_goes_back_to_legal_verification() -> None:
    state = retained()
    compliant(state, until=date(2026, 11, 30))
    state.legal.purchase_order = "PO-1"
    sign(state)
    (step,) = rules.progress(state, ctx(paris_instant(date(2026, 12, 1))))
    assert step.kind == "mission.start_blocked" and step.stage is MissionStage.LEGAL_VERIFICATION
    assert not state.legal.provider_compliant


def test_a_validated_renewal_signs_contract_v2_from_the_day_after_the_end_date() -> None:
    state = in_progress()
    at = datetime(2027, 4, 2, 9, tzinfo=UTC)
    requested = RenewalRequested(
        mission_id=PID, new_end_date=date(2027, 11, 30), new_tjm=Decimal("700"), occurred_at=at
    )
    step = rules.renewal_requested(state, requested, ctx(at))
    apply(state, step)
    assert state.stage is MissionStage.RENEWAL_PENDING
    assert step.detail == "jusqu'au 2027-11-30, TJM 700.00 €"
    accepted = RenewalAccepted(mission_id=PID, payment_offer=PaymentOffer.EXPRESS, occurred_at=at)
    apply(state, rules.renewal_accepted(state, accepted, ctx(at)))
    with pytest.raises(NotApplicable, match="only APR-1 may validate"):
        rules.renewal_validated(state, RenewalValidated(mission_id=PID, approver_id="X"), ctx(at))
    validated = RenewalValidated(mission_id=PID, approver_id="APR-1", occurred_at=at)
    apply(state, rules.renewal_validated(state, validated, ctx(at)))
    assert state.renewal is not None and state.renewal.step is RenewalStep.VALIDATED

    state.cra_months = ["2026-12", "2027-01", "2027-02", "2027-03", "2027-04", "2027-05"]
    (effective,) = rules.progress(state, ctx(at))
    terms = effective.changes["contract"]
    assert (terms.version, terms.start_date, terms.end_date) == (
        2,
        date(2027, 6, 1),
        date(2027, 11, 30),
    )
    assert (terms.tjm, terms.payment_offer) == (Decimal("700"), PaymentOffer.EXPRESS)
    assert effective.payment_offer is PaymentOffer.EXPRESS  # the search attribute changes
    # May ended on its last day and still does: no open cycle has days to learn.
    assert effective.continue_as_new and effective.period_changed == []
    assert state.end_date == date(2027, 11, 30) and state.renewal is None
    assert state.terms_on(date(2027, 5, 1)).version == 1
    assert state.terms_on(date(2027, 6, 1)).version == 2


def test_a_validated_renewal_waits_for_a_compliant_provider_and_says_why_once() -> None:
    state = in_progress()
    at = datetime(2027, 4, 2, 9, tzinfo=UTC)
    apply(
        state,
        rules.renewal_requested(
            state, RenewalRequested(mission_id=PID, new_end_date=date(2027, 11, 30)), ctx(at)
        ),
    )
    apply(state, rules.renewal_accepted(state, RenewalAccepted(mission_id=PID), ctx(at)))
    apply(
        state,
        rules.renewal_validated(
            state, RenewalValidated(mission_id=PID, approver_id="APR-1"), ctx(at)
        ),
    )
    state.legal.provider_compliant = False
    (blocked,) = [s for s in rules.progress(state, ctx(at)) if s.kind == "renewal.blocked"]
    assert {e.role for e in blocked.emails} == {"provider", "ops"}
    assert [s.kind for s in rules.progress(state, ctx(at))] == []  # alerted once


def test_a_termination_that_cuts_into_a_validated_month_is_refused() -> None:
    state = in_progress()
    state.cra_months = ["2026-12", "2027-01", "2027-02"]
    state.validated_months = ["2026-12", "2027-01"]
    before = state.model_copy(deep=True)
    at = datetime(2027, 2, 3, 9, tzinfo=UTC)
    with pytest.raises(NotApplicable):
        rules.mission_terminated(
            state,
            MissionTerminated(mission_id=PID, end_date=date(2027, 1, 15), reason="budget"),
            ctx(at),
        )
    assert state == before

    terminated = MissionTerminated(mission_id=PID, end_date=date(2027, 2, 15), reason="budget")
    step = rules.mission_terminated(state, terminated, ctx(at))
    assert step.changes == {"end_date": date(2027, 2, 15)}
    assert step.period_changed == ["2027-02"]  # the open month learns its new end, once
    assert state.termination is not None and state.end_date == date(2027, 2, 15)


def test_the_mission_ends_the_day_after_its_end_once_every_month_is_validated() -> None:
    state = in_progress()
    state.end_date = date(2027, 1, 31)
    state.cra_months = ["2026-12", "2027-01"]
    state.validated_months = ["2026-12"]
    after = paris_instant(date(2027, 2, 1))
    assert rules.next_deadline(state, NOW, state.cra_months) == after
    assert [s.kind for s in rules.progress(state, ctx(after))] == []
    assert rules.cra_closed(state, CraClosed(month="2027-01", status=CraStatus.VALIDATED)) == []
    (ended,) = rules.progress(state, ctx(after))
    assert ended.kind == "mission.ended" and ended.stage is MissionStage.COMPLETED
    assert ended.changes == {"ended_on": date(2027, 1, 31), "end_reason": "fin de mission"}


def test_a_validated_month_is_told_to_the_cycles_still_open() -> None:
    state = in_progress()
    state.cra_months = ["2026-12", "2027-01"]
    closed = CraClosed(month="2026-12", status=CraStatus.VALIDATED)
    assert rules.cra_closed(state, closed) == ["2027-01"]
    assert rules.cra_closed(state, closed) == []  # once


def test_each_month_opens_its_cycle_on_the_contract_in_force_on_its_first_day() -> None:
    state = in_progress()
    assert rules.next_cra_month(state, []) == "2026-12"
    assert rules.next_cra_month(state, ["2026-12"]) == "2027-01"
    assert rules.cra_opens_on(state, "2027-01") == date(2027, 1, 1)
    inp = rules.cra_input(state, PROPOSAL, "2027-01")
    assert (inp.terms_version, inp.payment_offer, inp.tjm) == (
        1,
        PaymentOffer.BASIC,
        Decimal("650.00"),
    )
    assert inp.invoice_mode == "generated"  # `invoicing: platform`, the default
    deadline = rules.next_deadline(state, paris_instant(date(2026, 12, 1)), ["2026-12"])
    assert deadline == paris_instant(date(2027, 1, 1)) < paris_instant(date(2027, 6, 1))
    assert deadline - paris_instant(date(2026, 12, 1)) == timedelta(days=31)


def test_provider_invoicing_makes_every_month_wait_for_an_import_and_a_renewal_keeps_it() -> None:
    """`contract.signed` with `invoicing: provider`: the contract says so, each CRA cycle is
    opened in the imported mode (no invoice generated at validation), and a renewal keeps
    the choice."""
    state = in_progress("provider")
    assert state.legal.contract is not None and state.legal.contract.invoicing == "provider"
    assert rules.cra_input(state, PROPOSAL, "2026-12").invoice_mode == "imported"
    at = datetime(2027, 4, 2, 9, tzinfo=UTC)
    requested = RenewalRequested(mission_id=PID, new_end_date=date(2027, 11, 30), occurred_at=at)
    apply(state, rules.renewal_requested(state, requested, ctx(at)))
    apply(state, rules.renewal_accepted(state, RenewalAccepted(mission_id=PID), ctx(at)))
    validated = RenewalValidated(mission_id=PID, approver_id="APR-1", occurred_at=at)
    apply(state, rules.renewal_validated(state, validated, ctx(at)))
    renewed = rules.renewal_terms(state, date(2027, 4, 2))
    assert renewed.version == 2 and renewed.invoicing == "provider"


def test_the_signature_says_who_invoices() -> None:
    state = retained()
    compliant(state)
    po = PurchaseOrderConfirmed(proposal_id=PID, po_number="PO-1")
    apply(state, rules.purchase_order_confirmed(state, po, ctx()))
    signed = ContractSigned(
        proposal_id=PID,
        signed_on=date(2026, 11, 20),
        payment_offer=PaymentOffer.BASIC,
        special_conditions_ref="CP-1",
        invoicing="provider",
    )
    step = rules.contract_signed(state, signed, ctx())
    assert step.detail.endswith(", factures importées par le prestataire")
    assert step.changes["contract"].invoicing == "provider"
