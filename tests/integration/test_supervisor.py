"""`contracting dev --supervise`: a worker killed with SIGKILL is restarted by the supervisor,
and a CRA validated afterwards is billed by the new worker; a held service stays down until
its hold file is gone."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from db.engine import create_engine
from db.models import EmailOutbox, Invoice, Payout
from schemas.enums import OutboxStatus
from tests.support.db import count
from tests.support.gateway import GatewayTestClient, month_open
from tests.support.platform import Platform
from tests.support.supervised import SupervisedStack
from tests.support.waits import eventually
from workflows.options import MAIL_TIMEOUT


@pytest.fixture(scope="module")
def stack() -> Iterator[SupervisedStack]:
    """One stack for the module (it takes 20-30 s to start on 2 busy cores)."""
    root = Path(tempfile.mkdtemp(prefix="contracting-supervise-"))
    supervised = SupervisedStack(root)
    try:
        supervised.start()
        yield supervised
    finally:
        supervised.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(400)
async def test_a_sigkilled_worker_is_restarted_and_bills_the_next_validation(
    stack: SupervisedStack,
) -> None:
    engine = create_engine(stack.database_url)
    try:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
            gateway = GatewayTestClient(http)
            pid, month = await month_open(gateway, "flash", 1)

            async def mails_sent() -> bool:  # no e-mail activity left on the worker we kill
                pending = select(func.count()).where(EmailOutbox.status == OutboxStatus.PENDING)
                return await count(engine, pending) == 0

            await eventually(mails_sent, within=30)
            before = stack.pid("worker")
            after = stack.kill("worker")  # SIGKILL; returns once the supervisor restarted it
            assert after != before
            assert "worker was killed by SIGKILL: restarting it in 0.5 s" in stack.log()
            # Delivered as the platform does: a 503 while the new worker starts is re-sent.
            platform = Platform(http)
            for delivery in (await platform.file(pid, month), await platform.validate(pid, month)):
                assert delivery.accepted, delivery.answers

            async def billed() -> bool:
                invoices = select(func.count()).where(
                    Invoice.mission_id == pid, Invoice.month == month
                )
                payouts = select(func.count()).where(
                    Payout.mission_id == pid, Payout.month == month
                )
                return await count(engine, invoices) == 1 and await count(engine, payouts) == 1

            # An activity the killed worker was running is retried after its start-to-close
            # timeout (at most MAIL_TIMEOUT): the bound allows for one.
            await eventually(billed, within=MAIL_TIMEOUT.total_seconds() + 60)
        assert stack.process is not None and stack.process.poll() is None  # still supervising
    finally:
        await engine.dispose()


def test_a_held_service_stays_down_until_released(stack: SupervisedStack) -> None:
    old = stack.pid("mailsink")
    stack.hold("mailsink")  # returns once the supervisor stopped it
    assert (stack.ready() or {})["services"]["mailsink"] is None
    stack.release("mailsink")
    assert stack.pid("mailsink") not in (None, old)
    assert "hold/mailsink exists: stopping mail sink until it is gone" in stack.log()
    assert "hold/mailsink is gone: starting mail sink" in stack.log()
