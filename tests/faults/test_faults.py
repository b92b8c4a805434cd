"""The fault suite (issue 12): real processes killed and stopped under a surge of validations
on `contracting dev --supervise`, generated bodies against its gateway; each experiment
prints the invariants it checked, in SQL and in the mail sink, and whether they held.

The supervisor itself is tested here too, on the same stack (a SIGKILLed worker restarted
and billing the next validation, a held service kept down until released): one stack start
for both. Short by default (it runs in `make test`); `CONTRACTING_FAULTS=full`
(`make faults`) runs the issue's sizes and the outages that take a minute (README, "Fault
suite").
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from db.engine import create_engine
from db.models import EmailOutbox, Invoice, Payout
from schemas.enums import OutboxStatus
from tests.faults.bodies import send_bodies
from tests.faults.experiments import (
    FaultSize,
    fault_size,
    hold_for,
    kill_gateway_mid_surge,
    kill_worker_repeatedly,
    missions_with_filed_cras,
    smtp_trouble,
    surge,
)
from tests.faults.invariants import Held, billing_invariants, table
from tests.support.db import count
from tests.support.gateway import GatewayTestClient, month_open
from tests.support.platform import Platform
from tests.support.supervised import SupervisedStack
from tests.support.waits import eventually
from workflows.options import MAIL_TIMEOUT

SIZE: FaultSize = fault_size()
REFUSED_ADDRESS = "refused@durand-conseil.example"
AFTER_A_KILL = MAIL_TIMEOUT.total_seconds() + 180
"""How long the effects may take after worker kills: an activity the killed worker was
running is retried once its start-to-close timeout (at most MAIL_TIMEOUT) has passed."""
TABLE: list[Held] = []

full_only = pytest.mark.skipif(
    not SIZE.full,
    reason="full size only (`make faults`): an outage of 30 s to a minute",
)


@pytest.fixture(scope="module")
def stack() -> Iterator[SupervisedStack]:
    """One supervised stack for the module; each experiment has missions of its own."""
    root = Path(tempfile.mkdtemp(prefix="contracting-faults-"))
    supervised = SupervisedStack(root, env=dict(SIZE.gateway_env))
    started = time.monotonic()
    try:
        supervised.start()
        print(f"\nstack ready in {time.monotonic() - started:.1f} s under {root}", flush=True)
        yield supervised
    finally:
        supervised.stop()
        print("\n" + table(TABLE), flush=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def http(stack: SupervisedStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=30, headers=stack.read_headers()
    ) as client:
        yield client


@pytest_asyncio.fixture
async def engine(stack: SupervisedStack) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_each_process_serves_its_probes_and_metrics(
    stack: SupervisedStack, http: httpx.AsyncClient
) -> None:
    """The production entry points (`python -m worker`, the gateway under uvicorn) on their
    internal ports: the worker's SDK metrics, its readiness, the gateway's metrics (its own,
    the ledger's, its Temporal client's) and readiness (README, "Production / Observability")."""
    s = stack.settings
    async with httpx.AsyncClient(base_url="http://127.0.0.1", timeout=10) as internal:
        worker_metrics = await internal.get(f"http://127.0.0.1:{s.metrics_port}/metrics")
        worker_ready = await internal.get(f"http://127.0.0.1:{s.worker_health_port}/ready")
        worker_alive = await internal.get(f"http://127.0.0.1:{s.worker_health_port}/health")
        gateway_metrics = await internal.get(f"http://127.0.0.1:{s.gateway_metrics_port}/metrics")
    assert "temporal_worker_task_slots_available" in worker_metrics.text, worker_metrics.text
    assert worker_ready.status_code == 200, worker_ready.text
    assert worker_ready.json()["checks"] == {"worker": "ok", "temporal": "ok", "database": "ok"}
    assert worker_alive.status_code == 200
    scrape = gateway_metrics.text
    assert "contracting_gateway_temporal_rpc_failures_total" in scrape, scrape
    assert 'contracting_missions{stage="in_progress"}' in scrape, scrape
    assert "temporal_request" in scrape, "no SDK metrics of the gateway's client"
    ready = await http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"temporal": "ok", "database": "ok"}}


def _report(lines: list[Held], started: float) -> None:
    TABLE.extend(lines)
    print(f"\n{lines[0].experiment}: {time.monotonic() - started:.1f} s\n{table(lines)}")
    assert all(line.held for line in lines), table(lines)


async def _surge_under(
    name: str,
    stack: SupervisedStack,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    *chosen: str,
    settle_within: float = 120.0,
) -> None:
    """A surge of `SIZE` validations under the `chosen` faults (run side by side), then the
    invariants."""
    started = time.monotonic()
    emails = {1: REFUSED_ADDRESS} if "smtp" in chosen else None
    months = await missions_with_filed_cras(
        GatewayTestClient(http), SIZE.missions, SIZE.months, emails=emails
    )
    print(f"\n{name}: missions ready in {time.monotonic() - started:.1f} s", flush=True)
    platform = Platform(http)
    n = len(months)
    faults = {
        "worker": lambda: kill_worker_repeatedly(stack, platform, SIZE.worker_kills, n),
        "gateway": lambda: kill_gateway_mid_surge(stack, platform, n),
        "postgres": lambda: hold_for(stack, platform, "postgres", SIZE.postgres_down, n),
        "temporal": lambda: hold_for(stack, platform, "temporal", SIZE.temporal_down, n),
        "smtp": lambda: smtp_trouble(stack, platform, REFUSED_ADDRESS, SIZE.smtp_hang, n),
    }
    print(f"{name}: {len(months)} validations", flush=True)

    async def together() -> None:
        await asyncio.gather(*(faults[fault]()() for fault in chosen))

    await surge(platform, months, together)
    print(f"{name}: surge answered at {time.monotonic() - started:.1f} s", flush=True)
    refused = frozenset({months[0][0]}) if emails else frozenset()
    lines = await billing_invariants(
        name, engine, stack.mail_dir, platform, months, within=settle_within, refused=refused
    )
    stack.script_mailsink()
    _report(lines, started)


@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    not SIZE.full,
    reason="full size only (`make faults`): an activity running on a SIGKILLed worker is "
    "retried only after its start-to-close timeout (up to 2 min, no heartbeat timeout), "
    "so the invariants settle minutes after the kills",
)
async def test_worker_sigkilled_during_a_surge_of_validations(
    stack: SupervisedStack, http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    name = f"worker SIGKILLed x{SIZE.worker_kills}"
    await _surge_under(name, stack, http, engine, "worker", settle_within=AFTER_A_KILL)


@pytest.mark.timeout(600)
async def test_gateway_sigkilled_mid_surge_then_unanswered_events_redelivered(
    stack: SupervisedStack, http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # No activity dies with the gateway: its effects come within seconds, a minute is ample.
    await _surge_under("gateway SIGKILLed", stack, http, engine, "gateway", settle_within=60)


@full_only
async def test_postgres_stopped_for_a_minute_mid_surge(
    stack: SupervisedStack, http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    name = f"PostgreSQL stopped {SIZE.postgres_down:.0f} s"
    await _surge_under(name, stack, http, engine, "postgres", settle_within=300)


@full_only
async def test_temporal_stopped_while_events_keep_coming(
    stack: SupervisedStack, http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    name = f"Temporal stopped {SIZE.temporal_down:.0f} s"
    await _surge_under(name, stack, http, engine, "temporal", settle_within=300)


@full_only
async def test_smtp_451s_a_refused_recipient_and_a_hang(
    stack: SupervisedStack, http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    name = f"SMTP 451 20 %, 550, hang {SIZE.smtp_hang:.0f} s"
    await _surge_under(name, stack, http, engine, "smtp", settle_within=300)


async def test_generated_bodies_get_no_5xx_and_a_refused_one_writes_nothing(
    stack: SupervisedStack,
) -> None:
    started = time.monotonic()
    info = stack.ready()
    assert info is not None
    client = await Client.connect(info["temporal_address"])
    report = await asyncio.to_thread(
        send_bodies, stack.gateway_url, stack.database_url, SIZE.bodies
    )
    # Workflows started since: each must belong to what a 2xx started (its mission's CRA
    # cycles, payouts…), none to a refused body.
    since = report.began.isoformat()
    started_ids = [w.id async for w in client.list_workflows(f'StartTime >= "{since}"')]
    owners = {wid.split("-", 1)[-1] for wid in report.accepted_workflows}
    unexplained = [wid for wid in started_ids if not any(o in wid for o in owners)]
    name = f"{SIZE.bodies} generated bodies"
    refused = sum(n for status, n in report.answers.items() if 400 <= status < 500)
    lines = [
        Held(
            name,
            "no 5xx",
            "0",
            f"{len(report.server_errors)} {report.server_errors[:2]}",
            not report.server_errors,
        ),
        Held(
            name,
            "a 4xx writes no row",
            f"0 of {refused}",
            f"{len(report.written_on_refusal)} {report.written_on_refusal[:2]}",
            not report.written_on_refusal,
        ),
        Held(
            name,
            "no workflow started but by a 2xx",
            "0",
            f"{len(unexplained)} {unexplained[:3]}",
            not unexplained,
        ),
        Held(name, "answers", "4xx mostly", str(dict(sorted(report.answers.items()))), refused > 0),
    ]
    _report(lines, started)


# --- The supervisor the experiments stand on (`contracting dev --supervise`) ----------------


@pytest.mark.timeout(400)
async def test_a_sigkilled_worker_is_restarted_and_bills_the_next_validation(
    stack: SupervisedStack,
) -> None:
    engine = create_engine(stack.database_url)
    try:
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, timeout=30, headers=stack.read_headers()
        ) as http:
            gateway = GatewayTestClient(http)
            pid, month = await month_open(gateway, "flash", 1)

            async def mails_sent() -> bool:  # no e-mail of this mission left on the worker
                pending = select(func.count()).where(
                    EmailOutbox.status == OutboxStatus.PENDING, EmailOutbox.mission_id == pid
                )
                return await count(engine, pending) == 0

            # This mission's only: an earlier experiment's surge may still be delivering.
            await eventually(mails_sent, within=60)
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
