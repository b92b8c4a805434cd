"""E-mail never gates the business (issue 12 point 4), on the time-skipping server with the
real activities, the real provider workflow and the SMTP sink answering "451 Try again later"
to every message: a provider's compliance reaches its mission, and a renewed mission
continues as new, while their e-mails wait; once SMTP is back, each is delivered once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from temporalio.client import WorkflowHandle

from db.models import EmailOutbox
from schemas.enums import OutboxStatus, PaymentOffer
from schemas.events import DocumentReviewed, ProposalRetained
from schemas.ids import provider_workflow_id
from schemas.names import DOCUMENT_REVIEWED, DOCUMENT_UPLOADED
from starter.devstack.mailsink import MailSink
from tests.support.factories import DOCUMENTS, document_events
from tests.support.mission import MissionHarness, renewed_after
from tests.support.months import following, last_day
from tests.support.waits import eventually

Handle = WorkflowHandle[Any, Any]
OUTAGE = 100_000
"""Messages answered 451: more than any test sends."""


async def outbox(h: MissionHarness, templates: set[str]) -> dict[str, Any]:
    """The outbox rows of these templates, by key."""
    rows = await h.rows(select(EmailOutbox).where(EmailOutbox.template.in_(templates)))
    return {row.outbox_key: row for row in rows}


async def delivered_once(h: MissionHarness, sink: MailSink, keys: set[str]) -> None:
    """Every row of `keys` is sent, and the sink got each of their messages exactly once."""
    of_keys = select(EmailOutbox.status, EmailOutbox.message_id).where(
        EmailOutbox.outbox_key.in_(keys)
    )

    async def all_sent() -> bool:
        return all(row.status is OutboxStatus.SENT for row in await h.rows(of_keys))

    await eventually(all_sent, within=60)
    for row in await h.rows(of_keys):
        assert len([m for m in sink.messages if m.message_id == row.message_id]) == 1


async def test_compliance_reaches_the_mission_while_the_provider_emails_wait(
    mission_harness: MissionHarness,
) -> None:
    h = mission_harness
    sink = h.sink
    assert sink is not None
    start = await h.today() + timedelta(days=10)
    mission = await h.submit(start, start + timedelta(days=60), prefix="OUT")
    pid = (await h.state(mission)).mission_id
    await h.send(mission, "proposal.retained", ProposalRetained(proposal_id=pid))
    state = await h.until(mission, lambda s: len(s.legal.provider_missing) == len(DOCUMENTS))
    provider = h.env.client.get_workflow_handle(provider_workflow_id(state.provider_siren))
    today = await h.today()
    for kind in DOCUMENTS:
        upload = document_events(state.provider_siren, kind, today, f"D-{pid}-{kind.value}")[0]
        await h.send(provider, DOCUMENT_UPLOADED, upload)

    sink.fail_next(OUTAGE)
    try:
        for kind in DOCUMENTS:
            await h.send(
                provider,
                DOCUMENT_REVIEWED,
                DocumentReviewed(document_id=f"D-{pid}-{kind.value}", accepted=True),
            )
        # The mission learns at once that its provider is compliant, mails or no mails.
        await h.until(mission, lambda s: s.legal.provider_compliant)
        accepted = {
            key: row
            for key, row in (await outbox(h, {"document_accepted"})).items()
            if f"D-{pid}-" in key
        }
        assert len(accepted) == len(DOCUMENTS)
        assert all(row.status is OutboxStatus.PENDING for row in accepted.values())
    finally:
        sink.recover()
    await delivered_once(h, sink, set(accepted))


async def test_a_renewed_mission_continues_as_new_while_its_emails_wait(
    mission_harness: MissionHarness,
) -> None:
    h = mission_harness
    sink = h.sink
    assert sink is not None
    mission, months = await h.mission_in_progress(PaymentOffer.EXPRESS, months=2)
    pid = (await h.state(mission)).mission_id
    first_run = mission.first_execution_run_id or ""
    renewals = {"renewal_requested", "renewal_accepted", "renewal_validated", "renewal_effective"}
    before = set(await outbox(h, renewals))

    sink.fail_next(OUTAGE)
    try:
        await h.renew(mission, last_day(following(following(months[-1]))), tjm="700.00")
        state = await h.continued(mission, first_run)
        assert renewed_after(1)(state)
        waiting = {
            key: row for key, row in (await outbox(h, renewals)).items() if key not in before
        }
        assert waiting and all(pid in key for key in waiting)
        assert any(row.status is OutboxStatus.PENDING for row in waiting.values())
    finally:
        sink.recover()
    await delivered_once(h, sink, set(waiting))
