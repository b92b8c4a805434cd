"""Hand each platform event to its workflow (start, update or update-with-start).

One handler per event type. Mission events are updates named after their type, sent with the
platform's `event_id` as update id; a validator's refusal is a 409 with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.mission_rules import cra_period
from schemas import search_attributes as sa
from schemas.compliance import ProviderComplianceInput
from schemas.enums import MissionStage
from schemas.events import (
    PAYLOADS,
    DocumentReviewed,
    DocumentUploaded,
    Event,
    InvoiceImported,
    ProposalSubmitted,
    RfpClosed,
)
from schemas.ids import (
    cra_workflow_id,
    fan_out_update_id,
    mission_workflow_id,
    payout_workflow_id,
    provider_workflow_id,
)
from schemas.mission import MissionInput, MissionState
from schemas.names import (
    CRA_UPDATES,
    DOCUMENT_REVIEWED,
    DOCUMENT_UPLOADED,
    MISSION_UPDATES,
    MISSION_WORKFLOW,
    PROVIDER_WORKFLOW,
    STATE_QUERY,
)
from starter.gateway.events import (
    NotApplicable,
    NotYetSupported,
    TemporalUnavailable,
    Unavailable,
    UnknownTarget,
)


class Directory(Protocol):
    """Lookups the gateway needs for events that do not name their workflow."""

    async def proposals_of_rfp(self, rfp_id: str) -> Sequence[str]:
        """Every proposal the gateway accepted on the RFP, written by the worker or not."""
        ...

    async def proposals_being_submitted(self, rfp_id: str) -> Sequence[str]:
        """The event ids of `proposal.submitted` on the RFP that a live claim is dispatching."""
        ...

    async def provider_of_document(self, document_id: str) -> str | None: ...

    async def invoices_by_number(self, number: str) -> Sequence[tuple[str, str, str]]:
        """(issuer SIREN, mission id, month) of every invoice numbered `number`."""
        ...


@dataclass(frozen=True)
class Dispatched:
    """The workflow(s) the event was handed to."""

    workflow_id: str
    also: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    client: Client
    task_queue: str
    directory: Directory
    rpc_timeout: timedelta | None = None
    """Of each Temporal call: a worker that is down must not hold the request for ever."""


Handler = Callable[[Context, Event], Awaitable[Dispatched]]


async def _proposal_submitted(ctx: Context, event: Event) -> Dispatched:
    proposal = event.payload
    assert isinstance(proposal, ProposalSubmitted)
    workflow_id = mission_workflow_id(proposal.proposal_id)
    try:
        await ctx.client.start_workflow(
            MISSION_WORKFLOW,
            MissionInput(event_id=event.event_id, occurred_at=event.occurred_at, proposal=proposal),
            id=workflow_id,
            task_queue=ctx.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            rpc_timeout=ctx.rpc_timeout,
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
        if await _started_by(ctx, workflow_id, event.event_id):
            # This very event's earlier dispatch started it: a delivery that timed out or a
            # gateway that died before recording it.
            return Dispatched(workflow_id=workflow_id)
        raise NotApplicable(
            f"proposal {proposal.proposal_id!r} was already submitted (workflow {workflow_id}); "
            "send 'proposal.updated' to change its TJM"
        ) from exc
    return Dispatched(workflow_id=workflow_id)


async def _started_by(ctx: Context, workflow_id: str, event_id: str) -> bool:
    """Whether the mission's current run was started by `event_id` (its input carries the
    `proposal.submitted` event id, kept across continue-as-new)."""
    handle = ctx.client.get_workflow_handle(workflow_id)
    async for first in handle.fetch_history_events(page_size=1, rpc_timeout=ctx.rpc_timeout):
        payloads = first.workflow_execution_started_event_attributes.input.payloads
        [started] = await ctx.client.data_converter.decode(payloads, [MissionInput])
        return bool(started.event_id == event_id)
    return False


EARLIER_RUNS_ASKED = 3
"""How many runs back a refused update id is looked for (a mission continues as new at each
renewal: a re-dispatch comes seconds or minutes after the first dispatch, not runs later)."""


async def _applied_by_an_earlier_run(ctx: Context, workflow_id: str, update_id: str) -> bool:
    """Whether a run this one continued from completed the update `update_id`. Temporal
    deduplicates an update id within a run only: an event applied by a run that then continued
    as new (a `renewal.validated` does), dispatched again because its first delivery timed out
    or its gateway died before recording it, is refused by the new run — it was applied."""
    run_id: str | None = None  # the current run
    for _ in range(EARLIER_RUNS_ASKED):
        run = ctx.client.get_workflow_handle(workflow_id, run_id=run_id)
        run_id = None
        async for first in run.fetch_history_events(page_size=1, rpc_timeout=ctx.rpc_timeout):
            run_id = first.workflow_execution_started_event_attributes.continued_execution_run_id
            break
        if not run_id:
            return False
        earlier = run.get_update_handle(update_id, workflow_run_id=run_id)
        try:
            await earlier.result(rpc_timeout=ctx.rpc_timeout)
        except WorkflowUpdateFailedError:
            return False  # refused there too
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            continue
        return True
    return False


async def _update(
    ctx: Context, handle: WorkflowHandle[Any, Any], name: str, arg: Any, update_id: str, what: str
) -> None:
    """Execute an update; a refusal is a 409, a missing workflow a 404, a closed one a 409."""
    try:
        await handle.execute_update(name, arg, id=update_id, rpc_timeout=ctx.rpc_timeout)
    except WorkflowUpdateFailedError as exc:
        if await _applied_by_an_earlier_run(ctx, handle.id, update_id):
            return
        raise NotApplicable(str(getattr(exc.cause, "message", exc.cause))) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            description = await handle.describe(rpc_timeout=ctx.rpc_timeout)
        except RPCError as missing:
            if missing.status != RPCStatusCode.NOT_FOUND:
                raise
            raise UnknownTarget(f"unknown {what} (no workflow {handle.id})") from exc
        status = description.status.name.lower() if description.status else "closed"
        raise NotApplicable(f"{what} is closed (workflow {handle.id} is {status})") from exc


async def _mission_update(ctx: Context, event: Event) -> Dispatched:
    """Proposal and contracting events name the proposal; renewal and termination events the
    mission: the same id (`mission_id` is the retained proposal's id)."""
    payload = event.payload
    proposal_id = getattr(payload, "proposal_id", None)
    what = f"proposal {proposal_id}" if proposal_id else f"mission {payload.mission_id}"  # type: ignore[attr-defined]
    workflow_id = mission_workflow_id(str(proposal_id or payload.mission_id))  # type: ignore[attr-defined]
    handle = ctx.client.get_workflow_handle(workflow_id)
    await _update(ctx, handle, event.type, payload, event.event_id, what)
    return Dispatched(workflow_id=workflow_id)


async def _rfp_closed(ctx: Context, event: Event) -> Dispatched:
    """Every proposal on the RFP is told; those already closed (lost, cancelled) are skipped.

    Each mission also queues the e-mail of every `favourited_by` address under one outbox
    key per event and address (domain.mission_rules.rfp_closed): however many missions share
    the RFP, and however often the event arrives, each address gets one e-mail."""
    closed = event.payload
    assert isinstance(closed, RfpClosed)
    submitting = await ctx.directory.proposals_being_submitted(closed.rfp_id)
    if submitting:
        raise Unavailable(
            f"a proposal on RFP {closed.rfp_id!r} is being submitted right now (event "
            f"{', '.join(submitting)}): nothing was recorded; retry later with the same "
            "event_id, so that it is told too"
        )
    proposals = await ctx.directory.proposals_of_rfp(closed.rfp_id)
    if not proposals:
        raise UnknownTarget(f"unknown RFP {closed.rfp_id!r}: no proposal was submitted on it")
    notified: list[str] = []
    skipped: dict[str, str] = {}
    for proposal_id in proposals:
        workflow_id = mission_workflow_id(proposal_id)
        handle = ctx.client.get_workflow_handle(workflow_id)
        try:
            await _update(
                ctx,
                handle,
                event.type,
                closed,
                fan_out_update_id(event.event_id, proposal_id),
                proposal_id,
            )
        except (NotApplicable, UnknownTarget) as exc:
            skipped[workflow_id] = exc.message
            continue
        notified.append(workflow_id)
    if not notified:
        raise NotApplicable(
            f"RFP {closed.rfp_id!r} has no open proposal left: " + "; ".join(skipped.values())
        )
    return Dispatched(workflow_id=notified[0], also=notified[1:], skipped=skipped)


async def _document_uploaded(ctx: Context, event: Event) -> Dispatched:
    """Update-with-start: a provider may upload documents before any mission exists."""
    upload = event.payload
    assert isinstance(upload, DocumentUploaded)
    workflow_id = provider_workflow_id(upload.provider_siren)
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        PROVIDER_WORKFLOW,
        ProviderComplianceInput(siren=upload.provider_siren),
        id=workflow_id,
        task_queue=ctx.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(sa.PROVIDER_ID, upload.provider_siren)]
        ),
    )
    try:
        await ctx.client.execute_update_with_start_workflow(
            DOCUMENT_UPLOADED,
            upload,
            start_workflow_operation=start,
            id=event.event_id,
            rpc_timeout=ctx.rpc_timeout,
        )
    except WorkflowUpdateFailedError as exc:
        raise NotApplicable(str(getattr(exc.cause, "message", exc.cause))) from exc
    return Dispatched(workflow_id=workflow_id)


async def _document_reviewed(ctx: Context, event: Event) -> Dispatched:
    review = event.payload
    assert isinstance(review, DocumentReviewed)
    siren = await ctx.directory.provider_of_document(review.document_id)
    if siren is None:
        raise UnknownTarget(f"unknown document {review.document_id!r}: upload it first")
    workflow_id = provider_workflow_id(siren)
    handle = ctx.client.get_workflow_handle(workflow_id)
    await _update(
        ctx, handle, DOCUMENT_REVIEWED, review, event.event_id, f"provider {siren}'s documents"
    )
    return Dispatched(workflow_id=workflow_id)


_NOT_VISIBLE = {
    MissionStage.PROPOSAL: "contracting has not begun: the proposal is not retained yet",
    MissionStage.QUALIFICATION: "contracting has not begun: the proposal is not retained yet",
    MissionStage.LEGAL_VERIFICATION: "contracting is still in progress (legal verification)",
    MissionStage.TO_START: "the mission has not started yet",
    MissionStage.RENEWAL_PENDING: "the renewal awaits validation by the provider or the client",
}


async def _why_no_cra(ctx: Context, mission_id: str, month: str) -> str:
    """Why the CRA of a month is not open: the FAQ's reasons, from the mission's state."""
    handle = ctx.client.get_workflow_handle(mission_workflow_id(mission_id))
    try:
        state = await handle.query(
            STATE_QUERY, result_type=MissionState, rpc_timeout=ctx.rpc_timeout
        )
    except RPCError as exc:
        raise UnknownTarget(f"unknown mission {mission_id!r}") from exc
    reason = _NOT_VISIBLE.get(state.stage)
    if reason is None and state.stage is MissionStage.IN_PROGRESS:
        reason = f"{month} is not a month of the mission, or has not begun"
        period = cra_period(state, month)
        if period is not None and period.part > 1:
            reason = f"this period, under new terms, begins on {period.start.isoformat()}"
        elif month != month[:7]:
            reason = (
                f"{month[:7]} has no such billing period: a month is billed in several "
                "periods only when new terms (a renewal or a new contract) begin inside it"
            )
    return f"the CRA of {month} is not open for mission {mission_id}: " + (
        reason or f"the mission is {state.stage.value}"
    )


async def _cra_update(ctx: Context, event: Event) -> Dispatched:
    """`cra.*` go to the month's cycle `cra-<mission_id>-<YYYY-MM>`."""
    mission_id = str(getattr(event.payload, "mission_id"))  # noqa: B009 - every cra.* has it
    month = str(getattr(event.payload, "month"))  # noqa: B009
    workflow_id = cra_workflow_id(mission_id, month)
    handle = ctx.client.get_workflow_handle(workflow_id)
    try:  # no describe first: one RPC per event, the cycle's absence explained when met
        await _update(ctx, handle, event.type, event.payload, event.event_id, f"the CRA of {month}")
    except UnknownTarget as exc:
        raise NotApplicable(await _why_no_cra(ctx, mission_id, month)) from exc
    return Dispatched(workflow_id=workflow_id)


async def _invoice_event(ctx: Context, event: Event) -> Dispatched:
    """`client_payment.received` and `invoice.cancelled` name an invoice number: the month's
    payout `payout-<mission_id>-<YYYY-MM>` is found from the `invoices` row."""
    number = str(getattr(event.payload, "invoice_number"))  # noqa: B009 - both types have it
    matches = await ctx.directory.invoices_by_number(number)
    if not matches:
        raise UnknownTarget(f"unknown invoice {number!r}: no invoice bears this number")
    if len(matches) > 1:
        issuers = ", ".join(sorted(issuer for issuer, _, _ in matches))
        raise NotApplicable(
            f"invoice number {number!r} is used by several issuers ({issuers}) and the event "
            "does not say whose invoice it is; nothing was recorded, ops must resolve it"
        )
    _, mission_id, month = matches[0]
    workflow_id = payout_workflow_id(mission_id, month)
    handle = ctx.client.get_workflow_handle(workflow_id)
    await _update(
        ctx, handle, event.type, event.payload, event.event_id, f"the payout of invoice {number}"
    )
    return Dispatched(workflow_id=workflow_id)


async def _invoice_imported(ctx: Context, event: Event) -> Dispatched:
    """`invoice.imported` names its mission and month: their payout awaits the import."""
    imported = event.payload
    assert isinstance(imported, InvoiceImported)
    workflow_id = payout_workflow_id(imported.mission_id, imported.month)
    handle = ctx.client.get_workflow_handle(workflow_id)
    await _update(
        ctx,
        handle,
        event.type,
        imported,
        event.event_id,
        f"the payout of mission {imported.mission_id} ({imported.month})",
    )
    return Dispatched(workflow_id=workflow_id)


HANDLERS: dict[str, Handler] = {
    "proposal.submitted": _proposal_submitted,
    **dict.fromkeys(MISSION_UPDATES, _mission_update),
    "rfp.closed": _rfp_closed,
    "document.uploaded": _document_uploaded,
    "document.reviewed": _document_reviewed,
    **dict.fromkeys(CRA_UPDATES, _cra_update),
    "client_payment.received": _invoice_event,
    "invoice.cancelled": _invoice_event,
    "invoice.imported": _invoice_imported,
}


def handler_for(event_type: str) -> Handler:
    """The handler of a type; `NotYetSupported` (501) for a type of the contract that this
    version does not route (none today: kept so that extending the contract stays safe)."""
    handler = HANDLERS.get(event_type)
    if handler is not None:
        return handler
    assert event_type in PAYLOADS
    raise NotYetSupported(
        f"event type {event_type!r} is part of the event contract but this version does not "
        "handle it yet; nothing was recorded, send it again once it does"
    )


async def dispatch(ctx: Context, event: Event) -> Dispatched:
    """Hand the event to its workflow; Temporal being unreachable, or not answering within
    the RPC timeout (a worker that is down never takes the update), is a 503."""
    handler = handler_for(event.type)
    retry = "nothing was recorded; retry later with the same event_id"
    try:
        return await handler(ctx, event)
    except RPCTimeoutOrCancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this request was cancelled, not timed out
        seconds = ctx.rpc_timeout.total_seconds() if ctx.rpc_timeout else 0
        raise TemporalUnavailable(
            f"Temporal did not complete the event within {seconds:g} s (is the worker "
            f"running?): {retry} (re-sent, it is applied once)",
            reason="timeout",
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED:
            seconds = ctx.rpc_timeout.total_seconds() if ctx.rpc_timeout else 0
            raise TemporalUnavailable(
                f"Temporal did not answer within {seconds:g} s: {retry}", reason="timeout"
            ) from exc
        raise TemporalUnavailable(
            f"Temporal did not accept the event ({exc.message}): {retry}", reason="rejected"
        ) from exc
    except RuntimeError as exc:
        # A client that never reached Temporal raises RuntimeError("Failed client connect: …").
        if not str(exc).startswith("Failed client connect"):
            raise
        raise TemporalUnavailable(
            f"Temporal cannot be reached ({exc}): {retry}", reason="unreachable"
        ) from exc
