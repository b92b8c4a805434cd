"""Which proposal events apply in which status (domain-rules.md, Proposal).

sent → read → interesting | not interesting → qualification meeting → retained | lost.
The provider may change the TJM or cancel, with a reason, until the client decides. Every
refusal says why, so the platform (HTTP 409) and support can act on it.
"""

from __future__ import annotations

from datetime import datetime

from domain.errors import DomainError
from schemas.enums import MissionStage, ProposalStatus


class NotApplicable(DomainError):
    """The event is valid but does not apply to the proposal in its current status."""


UNDECIDED = frozenset(
    {
        ProposalStatus.SENT,
        ProposalStatus.READ,
        ProposalStatus.INTERESTING,
        ProposalStatus.NOT_INTERESTING,
        ProposalStatus.QUALIFICATION_MEETING,
    }
)
"""The client has not decided yet: the provider may still change the TJM or cancel."""

OPEN = UNDECIDED | {ProposalStatus.RETAINED}
"""Proposals notified when their RFP closes."""

_LABELS = {
    ProposalStatus.SENT: "envoyée (sent)",
    ProposalStatus.READ: "lue (read)",
    ProposalStatus.INTERESTING: "intéressante (interesting)",
    ProposalStatus.NOT_INTERESTING: "pas intéressante (not interesting)",
    ProposalStatus.QUALIFICATION_MEETING: "entretien (qualification meeting)",
    ProposalStatus.RETAINED: "retenue (retained)",
    ProposalStatus.LOST: "perdue (lost)",
    ProposalStatus.CANCELLED: "annulée (cancelled)",
}


def label(status: ProposalStatus) -> str:
    return _LABELS[status]


def _require(status: ProposalStatus, allowed: frozenset[ProposalStatus], action: str) -> None:
    if status not in allowed:
        raise NotApplicable(
            f"cannot {action}: the proposal is {label(status)}; this applies only to a proposal "
            f"that is {' or '.join(label(s) for s in sorted(allowed))}"
        )


def on_read(status: ProposalStatus) -> ProposalStatus:
    _require(status, frozenset({ProposalStatus.SENT}), "mark the proposal read")
    return ProposalStatus.READ


def on_rated(status: ProposalStatus, interesting: bool) -> ProposalStatus:
    _require(
        status,
        frozenset(
            {
                ProposalStatus.SENT,
                ProposalStatus.READ,
                ProposalStatus.INTERESTING,
                ProposalStatus.NOT_INTERESTING,
            }
        ),
        "rate the proposal",
    )
    return ProposalStatus.INTERESTING if interesting else ProposalStatus.NOT_INTERESTING


def on_tjm_updated(status: ProposalStatus) -> None:
    _require(status, UNDECIDED, "change the TJM (the client has already decided)")


def on_cancelled(status: ProposalStatus) -> ProposalStatus:
    _require(status, UNDECIDED, "cancel the proposal (the client has already decided)")
    return ProposalStatus.CANCELLED


def on_qm_scheduled(status: ProposalStatus, at: datetime, now: datetime) -> ProposalStatus:
    """A QM is proposed after an "interesting" rating; scheduling it again reschedules it."""
    _require(
        status,
        frozenset({ProposalStatus.INTERESTING, ProposalStatus.QUALIFICATION_MEETING}),
        "schedule a qualification meeting",
    )
    if at <= now:
        raise NotApplicable(
            f"the qualification meeting must be in the future (got {at.isoformat()}, "
            f"now is {now.isoformat()})"
        )
    return ProposalStatus.QUALIFICATION_MEETING


def on_qm_held(status: ProposalStatus, scheduled: bool, already_held: bool) -> None:
    _require(status, frozenset({ProposalStatus.QUALIFICATION_MEETING}), "mark the meeting held")
    if not scheduled:
        raise NotApplicable("no qualification meeting is scheduled for this proposal")
    if already_held:
        raise NotApplicable("the qualification meeting was already marked as held")


def on_retained(status: ProposalStatus) -> ProposalStatus:
    _require(status, UNDECIDED, "retain the proposal")
    return ProposalStatus.RETAINED


def on_lost(status: ProposalStatus) -> ProposalStatus:
    _require(status, UNDECIDED, "mark the proposal lost")
    return ProposalStatus.LOST


def on_rfp_closed(status: ProposalStatus) -> ProposalStatus:
    """A closed RFP turns every undecided proposal into lost; a retained one stays retained."""
    _require(status, OPEN, "notify the RFP's closure")
    return ProposalStatus.RETAINED if status is ProposalStatus.RETAINED else ProposalStatus.LOST


def stage_of(status: ProposalStatus) -> MissionStage:
    """The mission stage while the proposal is the mission's whole story."""
    if status is ProposalStatus.QUALIFICATION_MEETING:
        return MissionStage.QUALIFICATION
    if status is ProposalStatus.LOST:
        return MissionStage.LOST
    if status is ProposalStatus.CANCELLED:
        return MissionStage.CANCELLED
    if status is ProposalStatus.RETAINED:
        return MissionStage.LEGAL_VERIFICATION
    return MissionStage.PROPOSAL
