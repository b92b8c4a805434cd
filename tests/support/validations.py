"""A CRA validation and its payout's transitions, built as the workflows build them
(workflows/cra.py `cra_validated`, workflows/payout.py `_record`), for the activities called
directly: bench/validation_sql.py and the tests of those activities' SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.cra import CraActivities
from activities.proposals import ProposalActivities
from domain.records import cra_validation as validation_of
from domain.records import payout_email_context
from schemas.activities import RecordProposalInput
from schemas.cra import CraInput, CraTransition, CraValidation, CraValidationResult
from schemas.enums import CraStatus, PayoutStatus
from schemas.payouts import PayoutEmail, PayoutTransition, PayoutTransitionKind
from tests.support.cra import cra_input, new_proposal, submitted, validated
from tests.support.factories import APPROVER

LINES: dict[str, Any] = {
    "expenses": [{"label": "Train", "amount": "120.00", "vat_rate": "10", "receipt_ref": "R-1"}],
    "overtime": [{"label": "Astreinte", "amount": "300.00"}],
}
"""The submitted CRA's lines beside its days."""
DAYS = "18"


async def submitted_mission(
    proposals: ProposalActivities, cra: CraActivities, month: str
) -> CraInput:
    """A mission of its own provider recorded (as tests/support/cra.py's harness records
    one), its CRA of `month` submitted with `LINES`; the CRA cycle's input."""
    first = date.fromisoformat(f"{month}-01")
    end = first + timedelta(days=120)
    proposal = new_proposal(first, end)
    env = ActivityEnvironment()
    await env.run(
        proposals.record_proposal,
        RecordProposalInput(
            event_id=f"evt-{uuid.uuid4().hex}", occurred_at=datetime.now(UTC), proposal=proposal
        ),
    )
    inp = cra_input(proposal, month, first, end)
    report = submitted(inp, DAYS, **LINES)
    await env.run(
        cra.record_cra_transition,
        CraTransition(
            key=f"cra.submitted:{inp.mission_id}:{month}:{uuid.uuid4().hex}",
            kind="submitted",
            at=report.occurred_at,
            mission_id=inp.mission_id,
            month=month,
            status=CraStatus.SUBMITTED,
            cra=report,
            provider_email=inp.provider.email,
        ),
    )
    return inp


def cra_validation(inp: CraInput) -> CraValidation:
    """The approver's validation of the submitted CRA, the day it opened."""
    at = validated(inp, APPROVER).occurred_at
    assert at is not None
    return validation_of(inp, submitted(inp, DAYS, **LINES), APPROVER, at)


def payout_transition(
    inp: CraInput,
    result: CraValidationResult,
    kind: PayoutTransitionKind,
    status: PayoutStatus,
    at: datetime,
) -> PayoutTransition:
    """The payout workflow's transition (workflows/payout.py `_record`)."""
    terms = result.terms
    suffix = f":{status.value}" if kind == "scheduled" else ""
    emails = []
    if kind == "paid":
        context = payout_email_context(
            mission_id=inp.mission_id,
            month=inp.month,
            provider_name=inp.provider.name,
            terms=terms,
            invoice_number=result.invoice_number,
            payout_date=terms.payout_date,
            reason=None,
        )
        emails.append(PayoutEmail(to="provider", template="payout_paid", context=context))
    return PayoutTransition(
        key=f"payout.{kind}:{inp.mission_id}:{inp.month}{suffix}",
        kind=kind,
        at=at,
        mission_id=inp.mission_id,
        month=inp.month,
        offer=terms.offer,
        status=status,
        amount=terms.amount,
        fee=terms.fee,
        net_amount=terms.net_amount,
        fee_deducted=terms.fee_deducted,
        fee_carried_out=terms.fee_carried_out,
        due_on=terms.payout_date,
        provider_email=inp.provider.email,
        emails=emails,
    )
