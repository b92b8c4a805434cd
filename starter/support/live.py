"""The live side of a support read: is the mission's workflow still running, and what does
only it know (a renewal on its way, the CRA cycles open but not yet filed, reminders).

Never required: Temporal out of reach, a workflow closed or no longer retained, and the read
still answers from the ledger (`starter.support.ledger`), saying so in `LiveWorkflow`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from schemas.enums import MissionStage
from schemas.ids import mission_workflow_id
from schemas.mission import LiveWorkflow, MissionState, TimelineEntry
from schemas.names import STATE_QUERY

LIVE_TIMEOUT = timedelta(seconds=5)
"""Longest a support read waits for Temporal before answering from the ledger alone."""


class Live(BaseModel):
    """`LiveWorkflow` and, while running, the workflow's own state."""

    workflow: LiveWorkflow
    state: MissionState | None = None


def not_asked(mission_id: str, why: str) -> Live:
    """No Temporal client at hand (unreachable at connection time)."""
    workflow = LiveWorkflow(
        workflow_id=mission_workflow_id(mission_id), status="unavailable", detail=why
    )
    return Live(workflow=workflow)


async def live_mission(client: Client | None, mission_id: str) -> Live:
    """Describe the mission's workflow; query its state while it runs."""
    workflow_id = mission_workflow_id(mission_id)
    if client is None:
        return not_asked(mission_id, "no connection to Temporal")
    handle = client.get_workflow_handle(workflow_id)
    try:
        described = await handle.describe(rpc_timeout=LIVE_TIMEOUT)
        if described.status != WorkflowExecutionStatus.RUNNING:
            status = described.status.name.lower() if described.status else None
            return Live(
                workflow=LiveWorkflow(
                    workflow_id=workflow_id,
                    status="closed",
                    close_status=status,
                    detail=f"the workflow is closed ({status}): every fact is in the ledger",
                )
            )
        state = await handle.query(STATE_QUERY, result_type=MissionState, rpc_timeout=LIVE_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Live(
                workflow=LiveWorkflow(
                    workflow_id=workflow_id,
                    status="gone",
                    detail="no workflow in Temporal any more (closed longer ago than the "
                    "namespace's retention, or deleted): the facts are the ledger's",
                )
            )
        return _unavailable(workflow_id, f"Temporal did not answer: {exc}")
    except (TimeoutError, WorkflowQueryFailedError) as exc:
        return _unavailable(workflow_id, f"the workflow's state query failed: {exc}")
    return Live(
        workflow=LiveWorkflow(
            workflow_id=workflow_id, status="running", stage=MissionStage(state.stage)
        ),
        state=state,
    )


def _unavailable(workflow_id: str, detail: str) -> Live:
    return Live(workflow=LiveWorkflow(workflow_id=workflow_id, status="unavailable", detail=detail))


def with_live(recorded: MissionState, live: MissionState | None) -> MissionState:
    """The mission as support reads it. Closed, gone or out of reach: the ledger's state.
    Running: the workflow's own state, which is a moment ahead of its rows (an event the
    gateway answered 2xx is in it at once, in the ledger once its activity commits) and holds
    what only it knows (a renewal on its way, open CRA cycles, reminders), with the ledger's
    whole timeline and every CRA it recorded."""
    if live is None:
        return recorded
    merged = live.model_copy(deep=True)
    seen = {_key(entry) for entry in recorded.timeline}
    merged.timeline = sorted(
        [*recorded.timeline, *(e for e in live.timeline if _key(e) not in seen)],
        key=lambda entry: entry.at,
    )
    merged.cra_months = sorted(set(recorded.cra_months) | set(live.cra_months))
    merged.validated_months = sorted(set(recorded.validated_months) | set(live.validated_months))
    merged.failed_transitions = list(
        dict.fromkeys([*live.failed_transitions, *recorded.failed_transitions])
    )
    return merged


def _key(entry: TimelineEntry) -> tuple[str, datetime]:
    """A timeline entry's identity in both sources: its kind and instant, to the millisecond
    (the workflow's clock's precision)."""
    at = entry.at.astimezone(UTC)
    return entry.kind, at.replace(microsecond=at.microsecond // 1000 * 1000)
