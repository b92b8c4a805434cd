"""A month's CRA cycle driven alone, as the mission would start it: the platform's side of
tests/workflow/test_cra.py and tests/workflow/test_any_hour.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.registry import Activities
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds, submission_opens_on
from domain.vat import vat_regime
from schemas.activities import RecordProposalInput
from schemas.cra import CraInput, CraProvider, CraResult, CraState
from schemas.enums import PaymentOffer
from schemas.events import CraSubmitted, CraValidated, ProposalSubmitted
from schemas.ids import cra_workflow_id
from schemas.names import CRA_WORKFLOW
from starter.devstack.mailsink import MailSink, ReceivedMessage
from tests.fixtures.temporal import refused_update, send_update
from tests.support.factories import APPROVER, new_siren, proposal_submitted
from tests.support.months import next_month
from tests.support.waits import mails

Handle = WorkflowHandle[Any, Any]


class CraHarness:
    """One month's CRA cycle started alone (its mission recorded in PostgreSQL, no
    MissionWorkflow), and the platform's events to it."""

    def __init__(
        self, env: WorkflowEnvironment, queue: str, sink: MailSink, activities: Activities
    ) -> None:
        self.env = env
        self.queue = queue
        self.sink = sink
        self.activities = activities

    async def today(self) -> date:
        return paris_date(await self.env.get_current_time())

    async def mission(
        self,
        *,
        siren: str | None = None,
        start: date | None = None,
        end: date | None = None,
        offer: PaymentOffer = PaymentOffer.BASIC,
        month: str | None = None,
        **overrides: Any,
    ) -> CraInput:
        """A mission recorded in PostgreSQL (parties, proposal, mission row) and the input of
        its CRA cycle for `month` (by default next month, the whole month)."""
        month = month or next_month(await self.today())
        first, last = month_bounds(month)
        start, end = start or first, end or last + timedelta(days=90)
        data = proposal_submitted(start_date=start.isoformat(), end_date=end.isoformat())
        data["provider"]["siren"] = siren or new_siren()
        proposal = ProposalSubmitted.model_validate(data)
        await ActivityEnvironment().run(
            self.activities.proposals.record_proposal,
            RecordProposalInput(
                event_id=f"evt-{uuid.uuid4().hex}",
                occurred_at=datetime.now(UTC),
                proposal=proposal,
            ),
        )
        return cra_input(proposal, month, start, end, offer, **overrides)

    async def start(self, inp: CraInput) -> Handle:
        return await self.env.client.start_workflow(
            CRA_WORKFLOW,
            inp,
            id=cra_workflow_id(inp.mission_id, inp.month),
            task_queue=self.queue,
            result_type=CraResult,
        )

    async def state(self, handle: Handle) -> CraState:
        result: CraState = await handle.query("state", result_type=CraState)
        return result

    async def send(
        self, handle: Handle, name: str, payload: Any, event_id: str | None = None
    ) -> Any:
        return await send_update(handle, name, payload, event_id)

    async def refused(self, handle: Handle, name: str, payload: Any) -> str:
        return await refused_update(handle, name, payload)

    async def mails(
        self, predicate: Callable[[ReceivedMessage], bool], count: int
    ) -> list[ReceivedMessage]:
        return await mails(self.sink, predicate, count)


SUBMIT_AT = time(10)
"""When (Paris) the harness's provider submits, on the day the CRA opens."""
VALIDATE_AT = time(17)
"""When (Paris) the harness's approver validates, the same day."""


def opens_on(inp: CraInput) -> date:
    """The first day the cycle's CRA may be submitted (domain/cra.py)."""
    return submission_opens_on(inp.month, inp.mission_start, inp.mission_end)


def submitted(
    inp: CraInput, days: str, *, at: datetime | None = None, **lines: Any
) -> CraSubmitted:
    """The provider's CRA, dated `at` (by default the day it opens, at SUBMIT_AT): days not
    yet worked are not billed, so it is never dated before that day unless a test says so."""
    return CraSubmitted.model_validate(
        {
            "mission_id": inp.mission_id,
            "month": inp.month,
            "days": days,
            "occurred_at": at or paris_instant(opens_on(inp), SUBMIT_AT),
            **lines,
        }
    )


def validated(
    inp: CraInput, approver: str = APPROVER, *, at: datetime | None = None
) -> CraValidated:
    """The approver's validation, dated `at` (by default the day the CRA opens, at
    VALIDATE_AT, after the harness's submission)."""
    return CraValidated(
        mission_id=inp.mission_id,
        month=inp.month,
        approver_id=approver,
        occurred_at=at or paris_instant(opens_on(inp), VALIDATE_AT),
    )


def cra_input(
    proposal: ProposalSubmitted,
    month: str,
    start: date,
    end: date,
    offer: PaymentOffer = PaymentOffer.BASIC,
    **overrides: Any,
) -> CraInput:
    """The input of `proposal`'s CRA cycle for `month` (the mission runs `start` to `end`)."""
    values: dict[str, Any] = {
        "mission_id": proposal.proposal_id,
        "month": month,
        "mission_start": start,
        "mission_end": end,
        "tjm": proposal.tjm,
        "payment_offer": offer,
        "provider": CraProvider(
            siren=proposal.provider.siren,
            name=proposal.provider.name,
            email=proposal.provider.email,
            legal_form=proposal.provider.legal_form,
            country=proposal.provider.country,
            vat_regime=vat_regime(proposal.provider.country, proposal.provider.vat_franchise),
        ),
        "client_id": proposal.client.id,
        "client_name": proposal.client.name,
        "approver_ids": [a.id for a in proposal.client.approvers],
    }
    return CraInput(**{**values, **overrides})


def new_proposal(start: date, end: date) -> ProposalSubmitted:
    """A proposal of its own provider (fresh SIREN) for a mission from `start` to `end`."""
    data = proposal_submitted(start_date=start.isoformat(), end_date=end.isoformat())
    data["provider"]["siren"] = new_siren()
    return ProposalSubmitted.model_validate(data)
