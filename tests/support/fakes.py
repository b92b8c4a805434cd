"""Small stand-ins for the activities, registered under the real activity names
(`@activity.defn(name=...)`, the names in schemas/): a worker built with them runs the real
workflows with no PostgreSQL and no SMTP (the fast workflow tier, tests/workflow/fast/).

Each fake records what it was asked, so a test can assert what the workflow wrote and in what
order; none writes anything anywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.invoices import invoice_amounts_for_cra
from domain.payouts import payout_terms
from schemas.activities import DeliverOutboxInput, DeliverOutboxResult, TransitionResult
from schemas.cra import CraTransition, CraValidation, CraValidationResult
from schemas.names import DELIVER_OUTBOX, RECORD_CRA_TRANSITION, RECORD_CRA_VALIDATION, START_PAYOUT
from schemas.payouts import PayoutInput
from workflows.registry import WORKFLOWS


@dataclass
class Recorded:
    """What the fake activities were asked, in order: (activity name, its input)."""

    calls: list[tuple[str, BaseModel]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def inputs(self, name: str) -> list[Any]:
        return [arg for called, arg in self.calls if called == name]


class FakeCraActivities:
    """The CRA cycle's activities: transitions and the billing recorded in memory, the
    payout's start recorded (not started), emails dropped."""

    def __init__(self) -> None:
        self.recorded = Recorded()

    @activity.defn(name=RECORD_CRA_TRANSITION)
    async def record_cra_transition(self, t: CraTransition) -> TransitionResult:
        self.recorded.calls.append((RECORD_CRA_TRANSITION, t))
        return TransitionResult(applied=True)

    @activity.defn(name=RECORD_CRA_VALIDATION)
    async def record_cra_validation(self, v: CraValidation) -> CraValidationResult:
        """The month billed as production bills it (domain/ alone): invoice dated of the
        validation day, generated number."""
        self.recorded.calls.append((RECORD_CRA_VALIDATION, v))
        amounts = invoice_amounts_for_cra(v.cra, v.tjm, vat_franchise=v.provider.vat_franchise)
        terms = payout_terms(
            v.payment_offer, v.validated_on, v.validated_on, amounts, tjm=v.tjm, days=v.cra.days
        )
        return CraValidationResult(
            applied=True,
            bpf_number=f"BPF-{v.mission_id}-{v.month}",
            invoice_number=f"F-{v.provider.siren}-000001",
            terms=terms,
        )

    @activity.defn(name=START_PAYOUT)
    async def start_payout(self, inp: PayoutInput) -> None:
        self.recorded.calls.append((START_PAYOUT, inp))

    @activity.defn(name=DELIVER_OUTBOX)
    async def deliver_outbox(self, inp: DeliverOutboxInput) -> DeliverOutboxResult:
        self.recorded.calls.append((DELIVER_OUTBOX, inp))
        return DeliverOutboxResult(sent=len(inp.keys))

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_cra_transition,
            self.record_cra_validation,
            self.start_payout,
            self.deliver_outbox,
        ]


@asynccontextmanager
async def fake_worker(
    env: WorkflowEnvironment, activities: list[Callable[..., Any]]
) -> AsyncIterator[str]:
    """Every workflow, and only the given (fake) activities, on a new task queue: the queue."""
    queue = f"fast-{uuid.uuid4().hex}"
    async with Worker(
        env.client, task_queue=queue, workflows=list(WORKFLOWS), activities=activities
    ):
        yield queue
