"""Hand each platform event to its workflow (start, signal or update).

One handler per event type. Types whose lifecycle stage has not landed yet answer 501 with
a message that says so, rather than accepting an event that nothing would act on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from schemas.enums import MissionStage
from schemas.events import PAYLOADS, Event, ProposalSubmitted
from schemas.mission import MissionInput
from starter.events import NotApplicable, NotYetSupported, Unavailable
from workflows import search_attributes as sa
from workflows.ids import mission_workflow_id


@dataclass(frozen=True)
class Dispatched:
    """The workflow the event was handed to."""

    workflow_id: str


Handler = Callable[[Client, str, Event], Awaitable[Dispatched]]


async def _proposal_submitted(client: Client, task_queue: str, event: Event) -> Dispatched:
    proposal = event.payload
    assert isinstance(proposal, ProposalSubmitted)
    workflow_id = mission_workflow_id(proposal.proposal_id)
    try:
        await client.start_workflow(
            "MissionWorkflow",
            MissionInput(event_id=event.event_id, occurred_at=event.occurred_at, proposal=proposal),
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.MISSION_ID, proposal.proposal_id),
                    SearchAttributePair(sa.RFP_ID, proposal.rfp_id),
                    SearchAttributePair(sa.CLIENT_ID, proposal.client.id),
                    SearchAttributePair(sa.PROVIDER_ID, proposal.provider.siren),
                    SearchAttributePair(sa.MISSION_STAGE, MissionStage.PROPOSAL.value),
                ]
            ),
        )
    except WorkflowAlreadyStartedError as exc:
        raise NotApplicable(
            f"proposal {proposal.proposal_id!r} was already submitted (workflow {workflow_id}); "
            "send 'proposal.updated' to change its TJM"
        ) from exc
    return Dispatched(workflow_id=workflow_id)


HANDLERS: dict[str, Handler] = {
    "proposal.submitted": _proposal_submitted,
}

# Which issue brings each type that is not handled yet, for the 501 message.
_PLANNED = {
    "proposal.": "proposal and qualification",
    "qualification_meeting.": "proposal and qualification",
    "rfp.": "proposal and qualification",
    "document.": "legal verification",
    "purchase_order.": "legal verification",
    "contract.": "legal verification",
    "cra.": "monthly CRA and billing",
    "invoice.": "monthly CRA and billing",
    "client_payment.": "payouts",
    "renewal.": "renewal",
    "mission.": "early termination",
}


def handler_for(event_type: str) -> Handler:
    """The handler of a type, or `NotYetSupported` naming the stage that will bring it."""
    handler = HANDLERS.get(event_type)
    if handler is not None:
        return handler
    assert event_type in PAYLOADS
    stage = next((s for prefix, s in _PLANNED.items() if event_type.startswith(prefix)), "later")
    raise NotYetSupported(
        f"event type {event_type!r} is part of the event contract but the {stage} stage that "
        "handles it is not deployed yet; nothing was recorded, send it again once it is"
    )


async def dispatch(client: Client, task_queue: str, event: Event) -> Dispatched:
    """Hand the event to its workflow; Temporal being unreachable is a 503."""
    handler = handler_for(event.type)
    try:
        return await handler(client, task_queue, event)
    except RPCError as exc:
        raise Unavailable(f"Temporal did not accept the event: {exc.message}") from exc
