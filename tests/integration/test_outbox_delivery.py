"""The outbox talks to SMTP without holding a database row lock or connection
(issue 12 point 4): a short transaction claims the row, SMTP is called with nothing checked
out of the pool, a second attempt meanwhile backs off instead of sending twice, and a claim
left by a dead worker lapses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest
import pytest_asyncio
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.mailer import Mailer, OutgoingEmail
from activities.outbox import BeingSent, OutboxActivities
from db.engine import create_engine, session_factory
from db.models import EmailOutbox
from schemas.activities import DeliverOutboxInput, DeliverOutboxResult
from schemas.enums import OutboxStatus
from settings import Settings
from tests.fixtures.postgres import as_psycopg_url, libpq_conninfo


class HeldMailer(Mailer):
    """An SMTP server that answers only when the test lets it."""

    def __init__(self) -> None:
        super().__init__(Settings())
        self.entered = asyncio.Event()
        self.answer = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, email: OutgoingEmail) -> None:
        self.entered.set()
        await self.answer.wait()
        self.sent.append(email.message_id)


@pytest_asyncio.fixture
async def engine(migrated_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def queued(engine: AsyncEngine) -> str:
    key = f"test.outbox:{uuid.uuid4().hex}"
    async with engine.begin() as conn:
        await conn.execute(
            insert(EmailOutbox).values(
                outbox_key=key,
                recipients=["someone@example.org"],
                subject="Objet",
                body_text="Corps",
                template="test_outbox",
            )
        )
    return key


async def row(engine: AsyncEngine, key: str) -> EmailOutbox:
    async with engine.connect() as conn:
        found = (await conn.execute(select(EmailOutbox).where(EmailOutbox.outbox_key == key))).one()
    return found  # type: ignore[return-value]


async def deliver(outbox: OutboxActivities, key: str) -> DeliverOutboxResult:
    result: DeliverOutboxResult = await ActivityEnvironment().run(
        outbox.deliver_outbox, DeliverOutboxInput(keys=[key])
    )
    return result


async def test_smtp_is_called_with_no_row_lock_and_no_connection_held(
    engine: AsyncEngine, migrated_db_url: str
) -> None:
    key = await queued(engine)
    mailer = HeldMailer()
    outbox = OutboxActivities(session_factory(engine), mailer)
    first = asyncio.create_task(deliver(outbox, key))
    await asyncio.wait_for(mailer.entered.wait(), timeout=10)

    # While SMTP talks: the worker's pool has nothing checked out, and the row is not locked.
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    conninfo = libpq_conninfo(as_psycopg_url(migrated_db_url))
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        await conn.execute(
            "SELECT 1 FROM email_outbox WHERE outbox_key = %s FOR UPDATE NOWAIT", (key,)
        )
    claimed = await row(engine, key)
    assert claimed.claim_token is not None and claimed.status is OutboxStatus.PENDING

    # A second attempt meanwhile (a retry of a timed-out attempt) backs off: no second send.
    with pytest.raises(BeingSent, match=key):
        await deliver(OutboxActivities(session_factory(engine), HeldMailer()), key)

    mailer.answer.set()
    assert (await asyncio.wait_for(first, timeout=10)).sent == 1
    sent = await row(engine, key)
    assert sent.status is OutboxStatus.SENT and sent.claim_token is None
    assert sent.attempts == 1 and mailer.sent == [sent.message_id]
    again = await deliver(outbox, key)
    assert (again.sent, again.already_sent) == (0, 1)
    assert len(mailer.sent) == 1


async def test_a_claim_left_by_a_dead_worker_lapses(engine: AsyncEngine) -> None:
    key = await queued(engine)
    # A worker claimed the row, then died before SMTP answered: its claim ran out a while ago.
    async with engine.begin() as conn:
        await conn.execute(
            update(EmailOutbox)
            .where(EmailOutbox.outbox_key == key)
            .values(
                claim_token=str(uuid.uuid4()),
                claimed_until=func.now() - timedelta(seconds=1),  # the database's clock
                attempts=1,
            )
        )
    mailer = HeldMailer()
    mailer.answer.set()
    result = await deliver(OutboxActivities(session_factory(engine), mailer), key)
    assert result.sent == 1 and len(mailer.sent) == 1
    sent = await row(engine, key)
    assert sent.status is OutboxStatus.SENT and sent.attempts == 2


async def test_a_cancelled_attempt_still_finishes_its_delivery_once(engine: AsyncEngine) -> None:
    """The caller of a delivery may stop waiting (`send_now`'s budget, a local attempt's
    timeout): the delivery it began is finished all the same, never left claimed with nothing
    sent until its lease runs out, and a retry meanwhile backs off: one e-mail."""
    key = await queued(engine)
    held = HeldMailer()
    outbox = OutboxActivities(session_factory(engine), held)
    attempt = asyncio.create_task(deliver(outbox, key))
    await asyncio.wait_for(held.entered.wait(), timeout=10)
    attempt.cancel()
    with pytest.raises(BaseException):  # noqa: B017 - the activity's cancellation, however wrapped
        await attempt
    with pytest.raises(BeingSent, match=key):
        await deliver(OutboxActivities(session_factory(engine), HeldMailer()), key)

    held.answer.set()  # SMTP answers the cancelled attempt's message
    for _ in range(100):
        sent = await row(engine, key)
        if sent.status is OutboxStatus.SENT:
            break
        await asyncio.sleep(0.05)
    assert sent.status is OutboxStatus.SENT and sent.claim_token is None
    assert sent.attempts == 1 and held.sent == [sent.message_id]
    again = await deliver(outbox, key)
    assert (again.sent, again.already_sent) == (0, 1)
