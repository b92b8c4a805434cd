"""The mission's decisions, as pure functions: state and event in, the transition out.

Each platform event has one function `(state, event, ctx) -> Step`: it refuses what does not
apply (a `NotApplicable`, the gateway's 409) before it changes anything, then updates the
state and says what to record — the timeline kind and detail, the stage, the e-mails, the
changes the transition activity writes. `progress` decides what the clock and the state now
allow (the QM reminder, the start, a compliance lapse, a renewal taking effect, the end);
`next_deadline` when to look again. No Temporal call here: the workflow
(workflows/mission.py) validates an event by deciding it on a copy of the state, then
applies it, and keeps the sequencing (queue, timers, cycles, continue-as-new).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from domain import mission_texts as texts
from domain import proposals
from domain.clock import paris_date, paris_instant
from domain.cra import mission_months, month_bounds, month_of, period_key
from domain.offers import check_offer_eligibility
from domain.proposals import NotApplicable
from domain.renewals import (
    check_declinable,
    check_new_contract,
    check_renewal_offer,
    check_renewal_request,
    check_renewal_step,
    check_termination,
    renewed_period_start,
)
from domain.vat import vat_regime
from schemas.compliance import ComplianceStatus, ProviderRef
from schemas.cra import CraClosed, CraInput, CraProvider
from schemas.enums import CraStatus, MissionStage, PaymentOffer, ProposalStatus, RenewalStep
from schemas.events import (
    ContractSigned,
    Dated,
    MissionTerminated,
    ProposalCancelled,
    ProposalLost,
    ProposalRated,
    ProposalRead,
    ProposalRetained,
    ProposalSubmitted,
    ProposalUpdated,
    PurchaseOrderConfirmed,
    QualificationMeetingHeld,
    QualificationMeetingScheduled,
    RenewalAccepted,
    RenewalDeclined,
    RenewalRequested,
    RenewalValidated,
    RfpClosed,
)
from schemas.ids import fanned_out_event_id
from schemas.mission import (
    ContractTerms,
    EmailSpec,
    MissionState,
    Renewal,
    Role,
    Termination,
    TimelineEntry,
)

FINAL_STAGES = frozenset(
    {MissionStage.COMPLETED, MissionStage.LOST, MissionStage.CANCELLED, MissionStage.TERMINATED}
)
RUNNING_STAGES = frozenset({MissionStage.IN_PROGRESS, MissionStage.RENEWAL_PENDING})
QM_REMINDER_BEFORE = timedelta(days=1)


@dataclass(frozen=True)
class Context:
    """What a decision may read besides the state: the proposal and the workflow's clock."""

    proposal: ProposalSubmitted
    now: datetime
    update_id: str | None = None
    """The update being decided (the platform event id, or the gateway's fan-out id)."""

    def occurred(self, event: Dated) -> datetime:
        """When the fact happened: the platform's `occurred_at`, else the clock."""
        return event.occurred_at or self.now


@dataclass
class Step:
    """One transition decided: what the workflow records (one `MissionTransition`)."""

    kind: str
    key: str | None = None
    """The idempotency key; None: the update's id (the platform's event id) makes it."""
    stage: MissionStage | None = None
    """The stage it moves to; None: it follows the proposal status (before the contract)."""
    detail: str = ""
    emails: list[EmailSpec] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    """Fields of `MissionTransition` the activity writes (tjm, contract, end_date…)."""
    payment_offer: PaymentOffer | None = None
    """The offer now in force, when it changed (the `PaymentOffer` search attribute)."""
    watch_provider: bool = False
    continue_as_new: bool = False
    period_changed: list[str] = field(default_factory=list)
    """Months whose open CRA cycle learns the new end date."""


# ---------------------------------------------------------------------------- the state


def initial_state(proposal: ProposalSubmitted, occurred_at: datetime) -> MissionState:
    return MissionState(
        mission_id=proposal.proposal_id,
        rfp_id=proposal.rfp_id,
        client_id=proposal.client.id,
        provider_siren=proposal.provider.siren,
        stage=MissionStage.PROPOSAL,
        proposal_status=ProposalStatus.SENT,
        tjm=proposal.tjm,
        start_date=proposal.start_date,
        end_date=proposal.end_date,
        timeline=[
            TimelineEntry(
                at=occurred_at,
                kind="proposal.submitted",
                detail=texts.proposal_submitted(proposal.tjm),
            )
        ],
    )


def stage_change(state: MissionState, stage: MissionStage | None) -> MissionStage | None:
    """The stage a step moves the mission to, or None when it stays. Before the contract
    the stage follows the proposal status unless the step names one."""
    if stage is None and state.stage in (MissionStage.PROPOSAL, MissionStage.QUALIFICATION):
        stage = proposals.stage_of(state.proposal_status)
    return stage if stage is not None and stage is not state.stage else None


def _target(state: MissionState, mission_id: str) -> None:
    if mission_id != state.mission_id:
        raise NotApplicable(f"event for mission {mission_id} sent to mission {state.mission_id}")


def _mail(state: MissionState, ctx: Context, role: Role, template: str, **extra: Any) -> EmailSpec:
    return texts.email(state, ctx.proposal, role, template, **extra)


# ---------------------------------------------------------------------------- proposal


def proposal_read(state: MissionState, event: ProposalRead, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    state.proposal_status = proposals.on_read(state.proposal_status)
    return Step("proposal.read", emails=[_mail(state, ctx, "provider", "proposal_read")])


def proposal_rated(state: MissionState, event: ProposalRated, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    status = proposals.on_rated(state.proposal_status, event.interesting)
    state.proposal_status = status
    return Step(
        "proposal.rated",
        detail=proposals.label(status),
        emails=[_mail(state, ctx, "provider", "proposal_rated", interesting=event.interesting)],
    )


def proposal_updated(state: MissionState, event: ProposalUpdated, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    proposals.on_tjm_updated(state.proposal_status)
    if event.tjm <= 0:
        raise NotApplicable("the new TJM must be greater than zero")
    if event.tjm == state.tjm:
        raise NotApplicable(f"the TJM is already {event.tjm} €")
    previous, state.tjm = state.tjm, event.tjm
    return Step(
        "proposal.updated",
        detail=texts.tjm_change(previous, event.tjm),
        changes={"tjm": event.tjm},
        emails=[_mail(state, ctx, "client", "proposal_tjm_updated", previous_tjm=str(previous))],
    )


def proposal_cancelled(state: MissionState, event: ProposalCancelled, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    state.proposal_status = proposals.on_cancelled(state.proposal_status)
    state.cancel_reason = event.reason
    return Step(
        "proposal.cancelled",
        detail=event.reason,
        changes={"cancel_reason": event.reason},
        emails=[_mail(state, ctx, "client", "proposal_cancelled", reason=event.reason)],
    )


def qm_scheduled(state: MissionState, event: QualificationMeetingScheduled, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    status = proposals.on_qm_scheduled(state.proposal_status, event.at, ctx.now)
    rescheduled = state.qualification_meeting_at is not None
    state.proposal_status = status
    state.qualification_meeting_at = event.at
    state.qualification_meeting_held = False
    return Step(
        "qualification_meeting.scheduled",
        detail=event.at.isoformat(),
        changes={"qualification_meeting_at": event.at},
        emails=texts.both(
            state, ctx.proposal, "qm_scheduled", qm_at=event.at.isoformat(), rescheduled=rescheduled
        ),
    )


def qm_held(state: MissionState, event: QualificationMeetingHeld, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    proposals.on_qm_held(
        state.proposal_status,
        state.qualification_meeting_at is not None,
        state.qualification_meeting_held,
    )
    state.qualification_meeting_held = True
    return Step("qualification_meeting.held")


def proposal_retained(state: MissionState, event: ProposalRetained, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    state.proposal_status = proposals.on_retained(state.proposal_status)
    return Step(
        "proposal.retained",
        detail=texts.LEGAL_VERIFICATION_UNDER_WAY,
        watch_provider=True,
        emails=[
            _mail(state, ctx, "provider", "proposal_retained"),
            _mail(state, ctx, "client", "proposal_retained_client"),
        ],
    )


def proposal_lost(state: MissionState, event: ProposalLost, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    state.proposal_status = proposals.on_lost(state.proposal_status)
    return Step(
        "proposal.lost", emails=[_mail(state, ctx, "provider", "proposal_lost", rfp_closed=False)]
    )


def rfp_closed(state: MissionState, event: RfpClosed, ctx: Context) -> Step:
    if event.rfp_id != state.rfp_id:
        raise NotApplicable(f"this proposal answers RFP {state.rfp_id}, not {event.rfp_id}")
    if state.rfp_closed:
        raise NotApplicable(f"RFP {event.rfp_id} was already closed for this proposal")
    status = proposals.on_rfp_closed(state.proposal_status)
    state.rfp_closed = True
    favourites = _favourite_mails(state, event, ctx)
    if status is ProposalStatus.RETAINED:
        return Step(
            "rfp.closed",
            emails=[_mail(state, ctx, "provider", "rfp_closed_retained"), *favourites],
        )
    state.proposal_status = status
    return Step(
        "rfp.closed",
        detail=texts.RFP_CLOSED_LOST,
        emails=[_mail(state, ctx, "provider", "proposal_lost", rfp_closed=True), *favourites],
    )


def _favourite_mails(state: MissionState, event: RfpClosed, ctx: Context) -> list[EmailSpec]:
    """One e-mail per address that had the RFP in its favourites. Every mission on the RFP
    queues them under the same outbox key, `rfp.closed:<event id>:favourite:<address>`
    (the platform's event id, not the mission's update id), so each address gets one
    e-mail however many missions share the RFP and however often the event arrives."""
    event_id = fanned_out_event_id(ctx.update_id or "", state.mission_id)
    context = {"rfp_id": event.rfp_id, "client_name": ctx.proposal.client.name}
    return [
        EmailSpec(
            role="provider",
            template="rfp_closed_favourite",
            context=context,
            to=address,
            key=f"rfp.closed:{event_id}:favourite:{address}",
        )
        for address in event.favourited_by
    ]


# ---------------------------------------------------------------------------- legal verification


def _require_legal_verification(state: MissionState, action: str) -> None:
    if state.stage is not MissionStage.LEGAL_VERIFICATION:
        raise NotApplicable(
            f"cannot {action}: the mission is at stage {state.stage.value}; this "
            "applies during legal verification (after the proposal is retained)"
        )


def purchase_order_confirmed(
    state: MissionState, event: PurchaseOrderConfirmed, ctx: Context
) -> Step:
    _target(state, event.proposal_id)
    _require_legal_verification(state, "confirm a purchase order")
    if state.legal.purchase_order is not None:
        raise NotApplicable(f"purchase order {state.legal.purchase_order} is already confirmed")
    state.legal.purchase_order = event.po_number
    return Step(
        "purchase_order.confirmed",
        detail=event.po_number,
        changes={"purchase_order": event.po_number},
    )


def contract_signed(state: MissionState, event: ContractSigned, ctx: Context) -> Step:
    _target(state, event.proposal_id)
    if state.legal.contract is not None and state.stage is not MissionStage.LEGAL_VERIFICATION:
        return _new_contract(state, event, ctx)
    _require_legal_verification(state, "sign the contract")
    if state.legal.contract is not None:
        raise NotApplicable(
            f"the contract was already signed on {state.legal.contract.signed_on}; a new "
            "contract is accepted once the mission is in progress, and only to move a "
            "contract signed before 2025-04-28 to the fixed-date offers; otherwise the "
            "payment offer changes at renewal"
        )
    check_offer_eligibility(event.payment_offer, event.signed_on, ctx.proposal.provider.country)
    terms = ContractTerms(
        version=1,
        signed_on=event.signed_on,
        payment_offer=event.payment_offer,
        special_conditions_ref=event.special_conditions_ref,
        invoicing=event.invoicing,
        tjm=state.tjm,
        start_date=state.start_date,
        end_date=state.end_date,
    )
    state.legal.contract = terms
    label = texts.offer_label(event.payment_offer)
    invoicing = ", factures importées par le prestataire" if event.invoicing == "provider" else ""
    return Step(
        "contract.signed",
        detail=f"offre {label}{invoicing}",
        changes={"contract": terms},
        payment_offer=event.payment_offer,
        emails=[_mail(state, ctx, "client", "contract_signed", offer=label)],
    )


def _new_contract(state: MissionState, event: ContractSigned, ctx: Context) -> Step:
    """A legacy contract moved to the fixed-date offers (issue 11 point 6): a new contract
    version, the other terms unchanged (TJM, end date, invoicing), whose offer applies from
    the day after the signature; the month it starts in is billed in two periods."""
    current = state.current_terms
    assert current is not None, "a signed mission has a contract"
    starts = check_new_contract(
        state.stage,
        current,
        event.payment_offer,
        event.signed_on,
        ctx.proposal.provider.country,
        paris_date(ctx.now),
        state.end_date,
        _earliest_new_terms(state),
    )
    terms = ContractTerms(
        version=current.version + 1,
        signed_on=event.signed_on,
        payment_offer=event.payment_offer,
        special_conditions_ref=event.special_conditions_ref,
        invoicing=current.invoicing,
        tjm=current.tjm,
        start_date=starts,
        end_date=state.end_date,
    )
    before = open_cycle_ends(state)
    state.renewals.append(terms)
    context = {
        "offer": texts.offer_label(terms.payment_offer),
        "signed_on": terms.signed_on.isoformat(),
        "effective_on": starts.isoformat(),
    }
    return Step(
        "contract.signed",
        detail=texts.fixed_date_contract(terms),
        changes={"contract": terms},
        payment_offer=terms.payment_offer,
        period_changed=changed_cycles(state, before),
        emails=texts.both(state, ctx.proposal, "contract_fixed_dates", **context),
    )


def _earliest_new_terms(state: MissionState) -> date:
    """The first day new terms may apply from: not inside a period whose CRA is validated,
    nor in a month before the latest one whose cycle is open."""
    earliest = state.start_date + timedelta(days=1)
    for key in state.cra_months:
        period = cra_period(state, key)
        if period is None:
            continue
        if key in state.validated_months:
            earliest = max(earliest, period.end + timedelta(days=1))
        else:
            earliest = max(earliest, month_bounds(period.month)[0])
    return earliest


def compliance_changed(state: MissionState, status: ComplianceStatus) -> None:
    """The provider workflow's news: what the next `progress` acts on."""
    state.legal.provider_compliant = status.compliant
    state.legal.provider_missing = list(status.missing)
    state.legal.provider_valid_until = status.valid_until


def compliant_on(state: MissionState, day: date) -> bool:
    legal = state.legal
    until = legal.provider_valid_until
    return legal.provider_compliant and (until is None or day < until)


def _missing(state: MissionState, default: str = "") -> str:
    return texts.missing_documents(state.legal.missing()["provider"]) or default


# ---------------------------------------------------------------------------- renewal


def _pending(state: MissionState) -> Renewal:
    if state.renewal is None:  # the renewal checks refuse first
        raise NotApplicable("no renewal is pending for this mission")
    return state.renewal


def _renewal_step(state: MissionState) -> RenewalStep | None:
    return state.renewal.step if state.renewal else None


def _renewal_emails(
    state: MissionState, ctx: Context, template: str, *roles: Role
) -> list[EmailSpec]:
    context = texts.renewal_context(_pending(state), state.tjm)
    return [_mail(state, ctx, role, template, **context) for role in roles]


def renewal_requested(state: MissionState, event: RenewalRequested, ctx: Context) -> Step:
    _target(state, event.mission_id)
    if state.termination is not None:
        raise NotApplicable(
            f"the mission was terminated early (it ends on {state.end_date}); "
            "a terminated mission is not renewed"
        )
    check_renewal_request(state.stage, state.end_date, event.new_end_date, event.new_tjm)
    state.renewal = Renewal(
        step=RenewalStep.REQUESTED,
        requested_at=ctx.occurred(event),
        new_end_date=event.new_end_date,
        new_tjm=event.new_tjm,
    )
    return Step(
        "renewal.requested",
        stage=MissionStage.RENEWAL_PENDING,
        detail=texts.renewal_detail(state.renewal),
        emails=_renewal_emails(state, ctx, "renewal_requested", "provider"),
    )


def renewal_accepted(state: MissionState, event: RenewalAccepted, ctx: Context) -> Step:
    _target(state, event.mission_id)
    check_renewal_step(_renewal_step(state), RenewalStep.REQUESTED, "accept the renewal")
    current = state.current_terms
    assert current is not None, "a mission in progress has a signed contract"
    offer = check_renewal_offer(
        event.payment_offer,
        current.payment_offer,
        paris_date(ctx.occurred(event)),
        ctx.proposal.provider.country,
    )
    renewal = _pending(state)
    renewal.step = RenewalStep.ACCEPTED
    renewal.payment_offer = offer
    return Step(
        "renewal.accepted",
        detail=texts.renewal_detail(renewal),
        emails=_renewal_emails(state, ctx, "renewal_accepted", "client"),
    )


def renewal_validated(state: MissionState, event: RenewalValidated, ctx: Context) -> Step:
    _target(state, event.mission_id)
    check_renewal_step(_renewal_step(state), RenewalStep.ACCEPTED, "validate the renewal")
    approvers = [approver.id for approver in ctx.proposal.client.approvers]
    if event.approver_id not in approvers:
        raise NotApplicable(
            f"approver {event.approver_id} is not an approver of mission "
            f"{state.mission_id}: only {', '.join(approvers)} may validate its renewal"
        )
    renewal = _pending(state)
    renewal.step = RenewalStep.VALIDATED
    renewal.approver_id = event.approver_id
    return Step(
        "renewal.validated",
        detail=texts.renewal_validated(event.approver_id),
        emails=_renewal_emails(state, ctx, "renewal_validated", "provider", "client"),
    )


def renewal_declined(state: MissionState, event: RenewalDeclined, ctx: Context) -> Step:
    _target(state, event.mission_id)
    check_declinable(_renewal_step(state))
    state.renewal = None
    other: Role = "provider" if event.by == "client" else "client"
    context = {"reason": event.reason, "declined_by": event.by}
    return Step(
        "renewal.declined",
        stage=MissionStage.IN_PROGRESS,
        detail=texts.renewal_declined(event.by, event.reason),
        emails=[
            _mail(state, ctx, other, "renewal_declined", **context),
            _mail(state, ctx, event.by, "renewal_declined", **context),
        ],
    )


def renewal_terms(state: MissionState, today: date) -> ContractTerms:
    """The contract version a validated renewal signs: the next version, from the day after
    the current end date to the new one, at the new TJM (or the current) and offer; the
    invoicing choice (platform or provider) is kept."""
    renewal, current = state.renewal, state.current_terms
    assert renewal is not None and renewal.payment_offer is not None and current is not None
    return ContractTerms(
        version=current.version + 1,
        signed_on=today,
        payment_offer=renewal.payment_offer,
        special_conditions_ref=current.special_conditions_ref,
        invoicing=current.invoicing,
        tjm=renewal.new_tjm or current.tjm,
        start_date=renewed_period_start(state.end_date),
        end_date=renewal.new_end_date,
    )


def _renew(state: MissionState, ctx: Context) -> Step | None:
    """A validated renewal takes effect once the provider is compliant (legal verification
    of the renewal); until then it waits, and says why (once per reason)."""
    renewal = state.renewal
    if renewal is None or renewal.step is not RenewalStep.VALIDATED:
        return None
    today = paris_date(ctx.now)
    if not compliant_on(state, today):
        missing = _missing(state, texts.EXPIRED_DOCUMENTS)
        if renewal.blocked == missing:
            return None
        renewal.blocked = missing
        return Step(
            "renewal.blocked",
            key=f"renewal.blocked:{state.mission_id}:{renewal.new_end_date}:{today}",
            detail=missing,
            emails=[
                _mail(state, ctx, "provider", "renewal_blocked", missing=missing),
                _mail(state, ctx, "ops", "renewal_blocked", missing=missing),
            ],
        )
    terms = renewal_terms(state, today)
    current = state.current_terms
    assert current is not None
    before = open_cycle_ends(state)
    billed = month_periods(state, month_of(terms.start_date))
    if billed and billed[-1].key in state.validated_months:
        # Its CRA is validated (immutable): the renewed days of that month, even on the same
        # terms, are a billing period of their own rather than days no CRA counts.
        state.split_on.append(terms.start_date)
    state.renewals.append(terms)
    state.end_date = terms.end_date
    state.tjm = terms.tjm
    state.renewal = None
    label = texts.offer_label(terms.payment_offer)
    return Step(
        "renewal.effective",
        key=f"renewal.effective:{state.mission_id}:{terms.version}",
        stage=MissionStage.IN_PROGRESS,
        detail=texts.contract_version(terms),
        changes={"contract": terms, "end_date": terms.end_date},
        payment_offer=terms.payment_offer
        if terms.payment_offer is not current.payment_offer
        else None,
        continue_as_new=True,
        # The month of the old end date, if open, now runs to the month's end (or the new
        # end) — unless the new terms differ: its second period gets a cycle of its own.
        period_changed=changed_cycles(state, before),
        emails=texts.both(
            state, ctx.proposal, "renewal_effective", offer=label, version=terms.version
        ),
    )


# ---------------------------------------------------------------------------- the end


def mission_terminated(state: MissionState, event: MissionTerminated, ctx: Context) -> Step:
    _target(state, event.mission_id)
    check_termination(
        state.stage,
        state.end_date,
        event.end_date,
        state.start_date,
        state.cra_months,
        state.validated_months,
    )
    _check_later_periods(state, event.end_date)
    before = open_cycle_ends(state)
    state.termination = Termination(
        end_date=event.end_date, reason=event.reason, at=ctx.occurred(event)
    )
    state.end_date = event.end_date
    state.renewal = None  # a pending renewal falls with the mission
    return Step(
        "mission.terminated",
        stage=MissionStage.IN_PROGRESS if state.stage in RUNNING_STAGES else None,
        detail=texts.terminated(event.end_date, event.reason),
        changes={"end_date": event.end_date},
        period_changed=changed_cycles(state, before),
        emails=texts.both(
            state,
            ctx.proposal,
            "mission_terminated",
            new_end_date=event.end_date.isoformat(),
            reason=event.reason,
        ),
    )


def _check_later_periods(state: MissionState, end: date) -> None:
    """An early end may not fall before a later period of a month whose cycle is open."""
    for key in state.cra_months:
        period = cra_period(state, key)
        if period is not None and period.part > 1 and end < period.start:
            raise NotApplicable(
                f"the termination date {end.isoformat()} is too early: the CRA of the period "
                f"{key} (from {period.start.isoformat()}, under the new terms) is already "
                "open; the mission may end on that day at the earliest"
            )


def _end(state: MissionState, ctx: Context) -> Step | None:
    """The day after the end date, once every month's CRA is validated (and no renewal is
    pending), the mission ends; its payouts complete on their own."""
    if paris_date(ctx.now) <= state.end_date or state.renewal is not None:
        return None
    if any(p.key not in state.validated_months for p in mission_periods(state)):
        return None
    terminated = state.termination is not None
    reason = state.termination.reason if state.termination else texts.END_OF_MISSION
    state.ended_on = state.end_date
    return Step(
        "mission.ended",
        key=f"mission.ended:{state.mission_id}",
        stage=MissionStage.TERMINATED if terminated else MissionStage.COMPLETED,
        detail=texts.ended(state.end_date, reason),
        changes={"ended_on": state.end_date, "end_reason": reason},
        emails=texts.both(
            state, ctx.proposal, "mission_ended", terminated=terminated, reason=reason
        ),
    )


# ---------------------------------------------------------------------------- the clock


def _qm_reminder_pending(state: MissionState, now: datetime) -> bool:
    at = state.qualification_meeting_at
    return (
        at is not None
        and not state.qualification_meeting_held
        and state.qualification_meeting_reminded_for != at
        and at > now
    )


def _remind_qm(state: MissionState, ctx: Context) -> Step | None:
    at = state.qualification_meeting_at
    if at is None or not _qm_reminder_pending(state, ctx.now) or ctx.now < at - QM_REMINDER_BEFORE:
        return None
    state.qualification_meeting_reminded_for = at
    return Step(
        "qualification_meeting.reminder",
        key=f"qualification_meeting.reminder:{state.mission_id}:{at.isoformat()}",
        detail=at.isoformat(),
        emails=texts.both(state, ctx.proposal, "qm_reminder", qm_at=at.isoformat()),
    )


def _ready(state: MissionState, ctx: Context) -> Step:
    state.ready_on = paris_date(ctx.now)
    return Step(
        "legal_verification.completed",
        key=f"legal_verification.completed:{state.mission_id}:{state.start_date}",
        stage=MissionStage.TO_START,
        detail=texts.starts_on(state.start_date),
        emails=texts.both(state, ctx.proposal, "mission_to_start"),
    )


def _start(state: MissionState, ctx: Context) -> Step:
    today = paris_date(ctx.now)
    if not compliant_on(state, today):
        # Documents lapsed between verification and the start date: verify again.
        state.legal.provider_compliant = False
        missing = _missing(state)
        return Step(
            "mission.start_blocked",
            key=f"mission.start_blocked:{state.mission_id}:{today.isoformat()}",
            stage=MissionStage.LEGAL_VERIFICATION,
            detail=missing,
            emails=[
                _mail(state, ctx, "provider", "mission_start_blocked", missing=missing),
                _mail(state, ctx, "ops", "mission_start_blocked", missing=missing),
            ],
        )
    # The mission starts on its start date, even when the worker notices it later (an outage
    # across midnight), or, when legal verification completed after that date, on that day.
    started_on = max(state.start_date, state.ready_on or state.start_date)
    state.started_on = started_on
    return Step(
        "mission.started",
        key=f"mission.started:{state.mission_id}",
        stage=MissionStage.IN_PROGRESS,
        changes={"started_on": started_on},
        detail=texts.started_on(started_on),
        emails=texts.both(state, ctx.proposal, "mission_started"),
    )


def _watch_compliance(state: MissionState, ctx: Context) -> Step | None:
    """A lapse alerts ops and the provider once; the mission goes on (product decision)."""
    today = paris_date(ctx.now)
    compliant = compliant_on(state, today)
    if not compliant and not state.compliance_alert:
        state.compliance_alert = True
        missing = _missing(state, texts.EXPIRED_DOCUMENTS)
        return Step(
            "compliance.lapsed",
            key=f"compliance.lapsed:{state.mission_id}:{today.isoformat()}",
            detail=missing,
            emails=[
                _mail(state, ctx, "provider", "compliance_lapsed", missing=missing),
                _mail(state, ctx, "ops", "compliance_lapsed", missing=missing),
            ],
        )
    if compliant and state.compliance_alert:
        state.compliance_alert = False
        return Step(
            "compliance.restored",
            key=f"compliance.restored:{state.mission_id}:{today.isoformat()}",
        )
    return None


def progress(state: MissionState, ctx: Context) -> list[Step]:
    """What the state and the clock now allow, in order (timers and automatic stages)."""
    stage = state.stage
    if stage is MissionStage.QUALIFICATION:
        steps = [_remind_qm(state, ctx)]
    elif stage is MissionStage.LEGAL_VERIFICATION and state.legal.complete:
        steps = [_ready(state, ctx)]
    elif stage is MissionStage.TO_START and ctx.now >= paris_instant(state.start_date):
        steps = [_start(state, ctx)]
    elif stage in RUNNING_STAGES:
        steps = [_watch_compliance(state, ctx), _renew(state, ctx), _end(state, ctx)]
    else:
        steps = []
    return [step for step in steps if step is not None]


def next_deadline(state: MissionState, now: datetime, opened: Collection[str]) -> datetime | None:
    """When `progress` has something to do next, given the months whose cycle is opened."""
    stage = state.stage
    if stage is MissionStage.QUALIFICATION and _qm_reminder_pending(state, now):
        assert state.qualification_meeting_at is not None
        return state.qualification_meeting_at - QM_REMINDER_BEFORE
    if stage is MissionStage.TO_START:
        return paris_instant(state.start_date)
    if stage not in RUNNING_STAGES:
        return None
    deadlines = []
    until = state.legal.provider_valid_until
    if until and not state.compliance_alert:
        deadlines.append(paris_instant(until))
    month = next_cra_month(state, opened)
    if month is not None:
        deadlines.append(paris_instant(cra_opens_on(state, month)))
    after_end = paris_instant(state.end_date + timedelta(days=1))
    if now < after_end:
        deadlines.append(after_end)
    return min(deadlines, default=None)


# ---------------------------------------------------------------------------- CRA cycles


@dataclass(frozen=True)
class CraPeriod:
    """One billing period of a month: the whole mission part of the month, or, when the
    terms change inside it, each stretch under one contract's TJM, offer and invoicing
    (issue 11 point 5). Each has its own CRA cycle, BPF, invoice and payout, keyed by `key`
    (`2026-07`, then `2026-07-p2`: domain.cra.period_key)."""

    key: str
    month: str
    part: int
    start: date
    end: date
    terms: ContractTerms | None
    last: bool
    """The month's last period: its end follows the mission's end date."""


def _billing_terms(terms: ContractTerms | None) -> tuple[object, ...]:
    """What a change of contract must change for a month to be split: TJM, offer, invoicing."""
    if terms is None:
        return ()
    return (terms.tjm, terms.payment_offer, terms.invoicing)


def month_periods(state: MissionState, month: str) -> list[CraPeriod]:
    """The billing periods of `month`, in order: one unless a contract version with other
    billing terms begins inside the mission's part of the month; none outside the mission."""
    first, last = month_bounds(month)
    start, end = max(first, state.start_date), min(last, state.end_date)
    if end < start:
        return []
    cuts = [start]
    for terms in state.renewals:
        begins = terms.start_date
        if start < begins <= end and (
            begins in state.split_on
            or _billing_terms(state.terms_on(begins - timedelta(days=1))) != _billing_terms(terms)
        ):
            cuts.append(begins)
    ends = [cut - timedelta(days=1) for cut in cuts[1:]] + [end]
    return [
        CraPeriod(
            key=period_key(month, part),
            month=month,
            part=part,
            start=begins,
            end=ends[part - 1],
            terms=state.terms_on(begins),
            last=part == len(cuts),
        )
        for part, begins in enumerate(cuts, 1)
    ]


def mission_periods(state: MissionState) -> list[CraPeriod]:
    """Every billing period of the mission, in order."""
    return [
        period
        for month in mission_months(state.start_date, state.end_date)
        for period in month_periods(state, month)
    ]


def cra_period(state: MissionState, key: str) -> CraPeriod | None:
    """The period of that key, None when the mission has no such period (any more)."""
    return next((p for p in mission_periods(state) if p.key == key), None)


def next_cra_month(state: MissionState, opened: Collection[str]) -> str | None:
    """The first billing period of the mission (its key) whose cycle is not opened yet."""
    return next((p.key for p in mission_periods(state) if p.key not in opened), None)


def cra_opens_on(state: MissionState, month: str) -> date:
    """The CRA of a period opens on its first day: the month's first day, the start date in
    the first month, or the day new terms begin."""
    period = cra_period(state, month)
    if period is None:
        return max(month_bounds(month)[0], state.start_date)
    return period.start


def cycle_bounds(state: MissionState, key: str) -> tuple[date, date]:
    """The dates a period's cycle bills within its month (`CraInput.mission_start` and
    `mission_end`): the mission's own dates, but where new terms cut the month."""
    period = cra_period(state, key)
    if period is None:  # cut away (a termination): the mission's dates say it has no days
        return state.start_date, state.end_date
    start = state.start_date if period.part == 1 else period.start
    return start, state.end_date if period.last else period.end


def cra_input(state: MissionState, proposal: ProposalSubmitted, month: str) -> CraInput:
    """The period's cycle (`month` is its key), billed on the contract in force on its first
    day."""
    contract = state.terms_on(cra_opens_on(state, month))
    assert contract is not None, "a mission in progress has a signed contract"
    provider = proposal.provider
    start, end = cycle_bounds(state, month)
    return CraInput(
        mission_id=state.mission_id,
        month=month,
        mission_start=start,
        mission_end=end,
        tjm=contract.tjm,
        payment_offer=contract.payment_offer,
        provider=CraProvider(
            siren=provider.siren,
            name=provider.name,
            email=provider.email,
            legal_form=provider.legal_form,
            country=provider.country,
            vat_regime=vat_regime(provider.country, provider.vat_franchise),
        ),
        client_id=proposal.client.id,
        client_name=proposal.client.name,
        approver_ids=[approver.id for approver in proposal.client.approvers],
        invoice_mode="imported" if contract.invoicing == "provider" else "generated",
        validated_months=list(state.validated_months),
        terms_version=contract.version,
    )


def open_cycle_ends(state: MissionState) -> dict[str, date | None]:
    """The last day each open cycle (opened, not validated) bills, by key (None: the period
    is gone)."""
    ends: dict[str, date | None] = {}
    for key in state.cra_months:
        if key not in state.validated_months:
            period = cra_period(state, key)
            ends[key] = period.end if period is not None else None
    return ends


def changed_cycles(state: MissionState, before: dict[str, date | None]) -> list[str]:
    """The open cycles whose end moved since `before` (`open_cycle_ends`): they learn it."""
    return [key for key, end in open_cycle_ends(state).items() if before.get(key) != end]


def cra_closed(state: MissionState, event: CraClosed) -> list[str]:
    """A cycle closed: a validated month is recorded; the cycles still open learn it (they
    may now accept corrections of that month). Returns those months."""
    if event.status is not CraStatus.VALIDATED or event.month in state.validated_months:
        return []
    state.validated_months.append(event.month)
    return [m for m in state.cra_months if m not in state.validated_months]


def provider_ref(proposal: ProposalSubmitted) -> ProviderRef:
    provider = proposal.provider
    return ProviderRef(
        siren=provider.siren,
        name=provider.name,
        email=provider.email,
        legal_form=provider.legal_form,
    )
