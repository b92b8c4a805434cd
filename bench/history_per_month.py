"""How many history events (and bytes) one mission-month costs.

Runs one mission through MissionWorkflow for N months on the time-skipping server, with the
real worker, PostgreSQL (embedded, throw-away) and an in-process SMTP sink, driven as the
platform would (tests/workflow/mission_billing.py): each month the CRA is submitted on the
month's last business day and validated the next business day (month 2 carries overtime, an
expense and a correction), then the clock runs past the last payout. Prints, per workflow:

- mission `mission-<id>`: events added by the N months (history after the last validation
  minus history once in progress), per month;
- CRA cycle `cra-<id>-<YYYY-MM>`: events and bytes of each (closed) cycle;
- payout `payout-<id>-<YYYY-MM>`: events and bytes once paid (it then stays open for late
  client payments and credit notes: a few more events when it closes).

    .venv/bin/python bench/history_per_month.py --months 6 --offer basic
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time as clock
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle

from activities.mailer import Mailer
from activities.registry import Activities
from bench.local import sink_and_database
from db.engine import create_engine
from domain.clock import paris_instant
from schemas.enums import PaymentOffer
from schemas.ids import cra_workflow_id, payout_workflow_id
from schemas.names import STATE_QUERY
from schemas.payouts import PayoutState
from settings import Settings
from starter.demo.simulate import start_time_skipping
from tests.support.mission import (
    MissionDriver,
    MonthPlan,
    first_validation_day,
)
from worker import build_worker

LINES = {
    "expenses": [{"label": "Train", "amount": "120.00", "vat_rate": "10", "receipt_ref": "R-1"}],
    "overtime": [{"label": "Astreinte", "amount": "300.00"}],
}


@dataclass
class Size:
    events: int
    bytes: int
    kinds: Counter[str] = field(default_factory=Counter)
    """Events by type (an activity's and a signal's named), for `--events`."""


def _kind(event: HistoryEvent) -> str:
    kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    if event.HasField("activity_task_scheduled_event_attributes"):
        kind += f" {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if event.HasField("marker_recorded_event_attributes"):
        kind += f" {event.marker_recorded_event_attributes.marker_name}"
    if event.HasField("signal_external_workflow_execution_initiated_event_attributes"):
        kind += (
            f" {event.signal_external_workflow_execution_initiated_event_attributes.signal_name}"
        )
    if event.HasField("workflow_execution_signaled_event_attributes"):
        kind += f" {event.workflow_execution_signaled_event_attributes.signal_name}"
    return kind


async def size(handle: WorkflowHandle[object, object]) -> Size:
    history = await handle.fetch_history()
    return Size(
        len(history.events),
        sum(event.ByteSize() for event in history.events),
        Counter(_kind(event) for event in history.events),
    )


async def measure(months: int, offer: PaymentOffer, events: bool = False) -> None:
    started = clock.monotonic()
    async with AsyncExitStack() as stack:
        sink, url = await sink_and_database(stack)
        env = await start_time_skipping()
        stack.push_async_callback(env.shutdown)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            database_url=url,
            smtp_host=sink.host,
            smtp_port=sink.port,
            task_queue=queue,
            gateway_secret="bench",
        )
        activities = Activities(
            create_engine(url),
            Mailer(settings),
            settings=settings,
            temporal=env.client,
        )
        stack.push_async_callback(activities.close)
        await stack.enter_async_context(build_worker(env.client, queue, activities.all()))

        driver = MissionDriver(env, queue)
        mission, calendar = await driver.mission_in_progress(offer, months)
        pid = (await driver.state(mission)).mission_id
        before = await size(mission)
        outcomes = []
        for index, month in enumerate(calendar):
            validate_on = first_validation_day(month)
            assert validate_on is not None
            lines: dict[str, object] = {}
            if index == 1:
                correction = {"label": "Oubli", "amount": "-50.00", "corrects_month": calendar[0]}
                lines = {**LINES, "corrections": [correction]}
            days = Decimal(("15", "18.5", "10")[index % 3])
            plan = MonthPlan(month, days, validate_on, lines)
            outcomes.append(await driver.run_month(mission, offer, plan))
        after = await size(mission)
        last = max(o.payout_on for o in outcomes)
        await driver.sleep_until(paris_instant(last + timedelta(days=1), time(10)))
        cycles = [
            await size(env.client.get_workflow_handle(cra_workflow_id(pid, m))) for m in calendar
        ]
        payouts = []
        for month in calendar:
            handle = env.client.get_workflow_handle(payout_workflow_id(pid, month))
            state: PayoutState = await handle.query(STATE_QUERY, result_type=PayoutState)
            assert state.status == "paid", state
            payouts.append(await size(handle))

    per_month = Size(
        (after.events - before.events) // months, (after.bytes - before.bytes) // months
    )
    print(f"{offer.value}, {months} months ({clock.monotonic() - started:.1f}s)")
    print(f"  mission-{pid}: {before.events} events once in progress, {after.events} after")
    print(f"    → {per_month.events} events, {per_month.bytes} bytes per month")
    if events:
        _kinds(after.kinds - before.kinds, months)
    _line("CRA cycle", cycles)
    if events:
        _kinds(sum((c.kinds for c in cycles), Counter()), months)
    _line("payout (paid)", payouts)
    if events:
        _kinds(sum((p.kinds for p in payouts), Counter()), months)
    total = per_month.events + statistics.mean(c.events for c in cycles)
    total += statistics.mean(p.events for p in payouts)
    print(f"  one mission-month, all three workflows: {total:.0f} events")


def _line(name: str, sizes: list[Size]) -> None:
    events = [s.events for s in sizes]
    mean_bytes = statistics.mean(s.bytes for s in sizes)
    print(
        f"  {name}: {statistics.mean(events):.0f} events per month "
        f"(min {min(events)}, max {max(events)}), {mean_bytes:.0f} bytes"
    )


def _kinds(kinds: Counter[str], months: int) -> None:
    """Events per month by type, most frequent first."""
    for kind, count in kinds.most_common():
        print(f"      {count / months:5.1f}  {kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument(
        "--offer",
        choices=[o.value for o in PaymentOffer if o is not PaymentOffer.BACK_TO_BACK],
        default=PaymentOffer.FLASH.value,
        help="back-to-back needs client payments the time-skipping server cannot mix with "
        "time skips (see MissionDriver.client_pays)",
    )
    parser.add_argument(
        "--events", action="store_true", help="also print each workflow's events by type"
    )
    args = parser.parse_args()
    asyncio.run(measure(args.months, PaymentOffer(args.offer), args.events))


if __name__ == "__main__":
    main()
