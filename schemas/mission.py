"""Inputs, outputs and state of the mission workflow (one model in, one model out)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.compliance import ComplianceStatus, MissingDocument, MissingReason
from schemas.enums import MissionStage, PaymentOffer, ProposalStatus, RenewalStep
from schemas.events import Invoicing, ProposalSubmitted


class MissionInput(BaseModel):
    """Starts `mission-<proposal_id>`: the `proposal.submitted` event that created it.

    `state` is set only when the workflow continues as new: the whole mission as the previous
    run left it (its one model of state), so nothing is recorded twice.
    """

    model_config = ConfigDict(frozen=True)

    event_id: str
    occurred_at: datetime
    proposal: ProposalSubmitted
    state: MissionState | None = None
    undelivered_emails: list[str] = []
    """Outbox keys the previous run had not finished delivering when it continued as new."""


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    detail: str = ""


class ContractTerms(BaseModel):
    """A signed version of the mission's terms (version 1 at contracting, +1 per renewal)."""

    version: int
    signed_on: date
    payment_offer: PaymentOffer
    special_conditions_ref: str
    invoicing: Invoicing = Field(
        default="platform",
        description="who issues the invoices: 'platform' (self-billing) or 'provider' (import)",
    )
    tjm: Decimal
    start_date: date
    end_date: date


def _why(missing: MissingDocument) -> str:
    """Why a document requirement is unmet, as the provider reads it on the platform."""
    if missing.status is MissingReason.UNDER_REVIEW:
        return "en cours de vérification"
    if missing.status is MissingReason.REJECTED:
        return f"refusé : {missing.comment}"
    if missing.status is MissingReason.EXPIRED and missing.expired_on is not None:
        return f"expiré le {missing.expired_on:%d/%m/%Y}"
    return "manquant"


class LegalVerification(BaseModel):
    """What the mission still waits for before it may start, side by side."""

    provider_compliant: bool = False
    provider_missing: list[MissingDocument] = Field(default_factory=list)
    provider_valid_until: date | None = None
    purchase_order: str | None = None
    contract: ContractTerms | None = None

    def missing(self) -> dict[str, list[str]]:
        """Human-readable (French) list of what each side still has to provide."""
        provider = [f"{m.requirement} ({_why(m)})" for m in self.provider_missing]
        if not self.provider_compliant and not provider:
            provider.append("documents légaux : conformité non encore vérifiée")
        if self.contract is None:
            provider.append("signature des conditions particulières et choix de l'offre")
        client = [] if self.purchase_order else ["bon de commande (purchase order)"]
        return {"provider": provider, "client": client}

    @property
    def complete(self) -> bool:
        return self.provider_compliant and self.purchase_order is not None and bool(self.contract)


class Renewal(BaseModel):
    """A renewal on its way: requested by the client, accepted by the provider, validated by
    the client, then effective once the provider's legal verification passes."""

    step: RenewalStep
    requested_at: datetime
    new_end_date: date
    new_tjm: Decimal | None = None
    payment_offer: PaymentOffer | None = Field(
        default=None, description="the offer of the renewed period, fixed at acceptance"
    )
    approver_id: str | None = None
    blocked: str | None = Field(
        default=None, description="why a validated renewal has not taken effect yet"
    )


class Termination(BaseModel):
    """An early end: the mission ends on `end_date` instead of its planned end date."""

    end_date: date
    reason: str
    at: datetime


class MissionState(BaseModel):
    """What the `state` query answers: the mission as ops and support see it."""

    mission_id: str
    rfp_id: str
    client_id: str
    provider_siren: str
    stage: MissionStage
    proposal_status: ProposalStatus
    tjm: Decimal
    start_date: date
    end_date: date
    qualification_meeting_at: datetime | None = None
    qualification_meeting_held: bool = False
    qualification_meeting_reminded_for: datetime | None = Field(
        default=None, description="the meeting whose reminder was sent"
    )
    cancel_reason: str | None = None
    rfp_closed: bool = False
    legal: LegalVerification = Field(default_factory=LegalVerification)
    ready_on: date | None = Field(
        default=None, description="the day legal verification completed (the mission may start)"
    )
    started_on: date | None = None
    compliance_alert: bool = Field(
        default=False, description="the provider's compliance lapsed while in progress"
    )
    cra_months: list[str] = Field(
        default_factory=list, description="months whose CRA cycle `cra-<id>-<month>` is open"
    )
    validated_months: list[str] = Field(default_factory=list)
    renewals: list[ContractTerms] = Field(
        default_factory=list,
        description="contract versions 2, 3, … signed at renewals, or by a new contract that "
        "moves a legacy contract to fixed dates (version 1: legal.contract)",
    )
    split_on: list[date] = Field(
        default_factory=list,
        description="days a billing period begins although the terms are the same: a renewal "
        "that took effect once the CRA of the month's days before it was validated",
    )
    renewal: Renewal | None = None
    termination: Termination | None = None
    ended_on: date | None = None
    run: int = Field(default=1, description="how many runs the workflow has had (continue-as-new)")
    failed_transitions: list[str] = Field(
        default_factory=list,
        description="kinds of the transitions the database refused for good (written to the "
        "timeline and alerted to ops; the search attribute FailedTransitions)",
    )
    timeline: list[TimelineEntry] = Field(
        default_factory=list,
        description="the latest entries; the whole timeline is in the mission_events table",
    )

    def terms_on(self, day: date) -> ContractTerms | None:
        """The contract in force on `day`: the latest renewal that began by then, or the first."""
        for terms in reversed(self.renewals):
            if terms.start_date <= day:
                return terms
        return self.legal.contract

    @property
    def current_terms(self) -> ContractTerms | None:
        return self.renewals[-1] if self.renewals else self.legal.contract


class LiveWorkflow(BaseModel):
    """What Temporal says of a mission's workflow, beside the ledger's facts
    (`starter.support.live`)."""

    workflow_id: str
    status: Literal["running", "closed", "gone", "unavailable"] = Field(
        description="running: its live state is added to the ledger's; closed: finished, "
        "the ledger has every fact; gone: no longer in Temporal (closed longer ago than the "
        "namespace's retention, or deleted); unavailable: Temporal did not answer"
    )
    detail: str = ""
    close_status: str | None = Field(
        default=None, description="how a closed workflow ended (completed, terminated…)"
    )
    stage: MissionStage | None = Field(
        default=None, description="the stage the running workflow holds"
    )


class MissionView(BaseModel):
    """`GET /missions/{id}` and `contracting mission show`: the state plus what is missing.

    `state` is the ledger's (PostgreSQL), with what only a running workflow knows added;
    `live` says whether it was (`starter.support.missions`)."""

    state: MissionState
    missing: dict[str, list[str]]
    documents: ComplianceStatus | None = None
    live: LiveWorkflow | None = None


class MissionResult(BaseModel):
    """What a finished mission workflow returns."""

    mission_id: str
    stage: MissionStage


class UpdateAccepted(BaseModel):
    """What an update handler answers once the event is applied to the mission."""

    mission_id: str
    stage: MissionStage
    proposal_status: ProposalStatus


Role = Literal["provider", "client", "ops"]


class EmailSpec(BaseModel):
    """An email a transition queues: who gets it (resolved from the database) and what."""

    role: Role
    template: str
    context: dict[str, Any] = Field(default_factory=dict)
    to: str | None = None
    """An explicit address instead of the role's (a provider who favourited an RFP)."""
    key: str | None = None
    """The outbox key for `to`, shared by every mission that queues the same e-mail so it
    is sent once; None: `<transition key>:<role>`."""


class MissionTransition(BaseModel):
    """One lifecycle transition, written by one activity in one transaction.

    `key` is deterministic (the platform event id, or a timer's business key): the same
    transition retried writes nothing twice.
    """

    mission_id: str
    key: str
    kind: str
    at: datetime
    detail: str = ""
    stage: MissionStage | None = None
    proposal_status: ProposalStatus | None = None
    tjm: Decimal | None = None
    qualification_meeting_at: datetime | None = None
    cancel_reason: str | None = None
    purchase_order: str | None = None
    contract: ContractTerms | None = None
    started_on: date | None = None
    end_date: date | None = None
    ended_on: date | None = None
    end_reason: str | None = None
    emails: list[EmailSpec] = Field(default_factory=list)


MissionInput.model_rebuild()
