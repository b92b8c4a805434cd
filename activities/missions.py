"""Mission lifecycle transitions: state, timeline and outbox in one transaction.

The timeline row's idempotency key decides: when it already exists, the transition was
committed before (a retry after a crash) and only the outbox keys are returned again, so the
send activity can finish what the first attempt started.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from activities.carry_over import alert_unabsorbed
from activities.outbox import SendNow, keep_for_later
from activities.transitions import queue_email, record_timeline
from db.models import (
    Approver,
    Contract,
    Mission,
    MissionTerms,
    Proposal,
    ProposalStatusHistory,
    Provider,
    PurchaseOrder,
)
from schemas.activities import FailedTransition, TransitionResult
from schemas.compliance import ProviderComplianceInput, WatchRequest
from schemas.ids import provider_workflow_id
from schemas.mission import MissionTransition, Role
from schemas.names import (
    PROVIDER_WORKFLOW,
    RECORD_FAILED_TRANSITION,
    RECORD_MISSION_TRANSITION,
    WATCH,
    WATCH_PROVIDER,
)
from schemas.search_attributes import PROVIDER_ID


class MissionActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ops_email: str,
        task_queue: str,
        temporal: Client | None = None,
        send_now: SendNow = keep_for_later,
    ) -> None:
        """`send_now` sends a transition's e-mails after its commit (activities.outbox)."""
        self._sessions = sessions
        self._send_now = send_now
        self._ops_email = ops_email
        self._task_queue = task_queue
        self._temporal = temporal

    @activity.defn(name=RECORD_MISSION_TRANSITION)
    async def record_mission_transition(self, t: MissionTransition) -> TransitionResult:
        async with self._sessions.begin() as session:
            applied = await record_timeline(
                session,
                key=t.key,
                mission_id=t.mission_id,
                kind=t.kind,
                at=t.at,
                data={"detail": t.detail, "stage": t.stage, "status": t.proposal_status},
            )
            if applied:
                await _apply_changes(session, t)
            keys = []
            for email in t.emails:
                if email.to is not None:
                    recipients = [email.to]
                else:
                    recipients = await self._recipients(session, t.mission_id, email.role)
                if not recipients:
                    activity.logger.warning("no %s recipient for %s", email.role, t.mission_id)
                    continue
                keys.append(
                    await queue_email(
                        session,
                        key=email.key or f"{t.key}:{email.role}",
                        mission_id=t.mission_id,
                        recipients=recipients,
                        template=email.template,
                        context={**email.context, "role": email.role},
                    )
                )
            if t.kind == "mission.ended":
                # A balance still owed by the provider at the end: an ops alert, nothing paid.
                alert = await alert_unabsorbed(
                    session, t.mission_id, at=t.at, ops_email=self._ops_email
                )
                if alert is not None:
                    keys.append(alert)
        return TransitionResult(applied=applied, outbox_keys=await self._send_now(keys))

    @activity.defn(name=RECORD_FAILED_TRANSITION)
    async def record_failed_transition(self, f: FailedTransition) -> TransitionResult:
        """A transition the database refused for good, made visible: an ERROR log naming the
        mission, the timeline row `transition.failed` and one ops e-mail, keyed by the failed
        transition's key (written once however often this is retried). It writes nothing of
        the refused data, so it cannot be refused in turn."""
        activity.logger.error(
            "mission %s: transition %s (%s) refused for good by the database: %s",
            f.mission_id,
            f.kind,
            f.key,
            f.reason,
        )
        key = f"transition.failed:{f.key}"
        async with self._sessions.begin() as session:
            applied = await record_timeline(
                session,
                key=key,
                mission_id=f.mission_id,
                kind="transition.failed",
                at=f.at,
                data={"transition": f.kind, "key": f.key, "reason": f.reason},
            )
            alert = await queue_email(
                session,
                key=f"{key}:ops",
                mission_id=f.mission_id,
                recipients=[self._ops_email],
                template="transition_failed",
                context={"mission_id": f.mission_id, "transition": f.kind, "reason": f.reason},
            )
        return TransitionResult(applied=applied, outbox_keys=[alert])

    async def _recipients(self, session: AsyncSession, mission_id: str, role: Role) -> list[str]:
        if role == "ops":
            return [self._ops_email]
        if role == "provider":
            stmt = (
                select(Provider.email)
                .join(Proposal, Proposal.provider_siren == Provider.siren)
                .where(Proposal.proposal_id == mission_id)
            )
        else:
            stmt = (
                select(Approver.email)
                .join(Proposal, Proposal.client_id == Approver.client_id)
                .where(Proposal.proposal_id == mission_id)
                .order_by(Approver.approver_id)
            )
        return list((await session.execute(stmt)).scalars())

    @activity.defn(name=WATCH_PROVIDER)
    async def watch_provider(self, request: WatchRequest) -> None:
        """Start `provider-<SIREN>` if needed and subscribe the mission to its compliance."""
        if self._temporal is None:
            raise RuntimeError("watch_provider needs a Temporal client (see Activities)")
        await self._temporal.start_workflow(
            PROVIDER_WORKFLOW,
            ProviderComplianceInput(siren=request.provider.siren, provider=request.provider),
            id=provider_workflow_id(request.provider.siren),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=WATCH,
            start_signal_args=[request],
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(PROVIDER_ID, request.provider.siren)]
            ),
        )


async def _apply_changes(session: AsyncSession, t: MissionTransition) -> None:
    mission: dict[str, Any] = {}
    if t.stage is not None:
        mission["stage"] = t.stage
    proposal: dict[str, Any] = {}
    if t.proposal_status is not None:
        proposal["status"] = t.proposal_status
        await session.execute(
            insert(ProposalStatusHistory)
            .values(proposal_id=t.mission_id, status=t.proposal_status, at=t.at, detail=t.detail)
            .on_conflict_do_nothing()
        )
    if t.tjm is not None:
        proposal["tjm"] = t.tjm
    if t.qualification_meeting_at is not None:
        proposal["qualification_meeting_at"] = t.qualification_meeting_at
    if t.cancel_reason is not None:
        proposal["cancel_reason"] = t.cancel_reason
    if t.purchase_order is not None:
        await session.execute(
            insert(PurchaseOrder)
            .values(mission_id=t.mission_id, po_number=t.purchase_order)
            .on_conflict_do_nothing()
        )
    if t.contract is not None:
        c = t.contract
        await session.execute(
            insert(Contract)
            .values(
                mission_id=t.mission_id,
                version=c.version,
                signed_on=c.signed_on,
                payment_offer=c.payment_offer,
                special_conditions_ref=c.special_conditions_ref,
            )
            .on_conflict_do_nothing()
        )
        await session.execute(
            insert(MissionTerms)
            .values(
                mission_id=t.mission_id,
                version=c.version,
                tjm=c.tjm,
                start_date=c.start_date,
                end_date=c.end_date,
                payment_offer=c.payment_offer,
                special_conditions_ref=c.special_conditions_ref,
                signed_on=c.signed_on,
            )
            .on_conflict_do_nothing()
        )
        mission.update(payment_offer=c.payment_offer, current_terms_version=c.version)
    if t.started_on is not None:
        mission["started_on"] = t.started_on
    if t.end_date is not None:
        mission["end_date"] = t.end_date
    if t.ended_on is not None:
        mission.update(ended_on=t.ended_on, end_reason=t.end_reason)
    if proposal:
        await session.execute(
            update(Proposal).where(Proposal.proposal_id == t.mission_id).values(**proposal)
        )
    if mission:
        await session.execute(
            update(Mission).where(Mission.mission_id == t.mission_id).values(**mission)
        )
