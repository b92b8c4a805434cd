"""Worker CPU and SQL statements per CRA validation, activity by activity.

Calls the real activity methods (not through Temporal) for N validations of distinct
missions, against an embedded, throw-away PostgreSQL and an in-process SMTP sink, in the
order a month's validation runs them in production:

- `record_cra_validation` (the billing transaction: CRA, lines, BPF, invoice, payout row,
  timeline, outbox);
- `deliver_outbox` of the validation's e-mail (claim, send, mark sent);
- `record_payout_transition` "scheduled", then "paid" with the provider's e-mail, and its
  delivery.

Each mission is set up as the tests set one up (tests/support/validations.py: its proposal
recorded, its CRA submitted with a few expense and overtime lines); the setup is not
measured. Prints, per activity, the CPU this process spent (`time.process_time`, ms per
validation) and the SQL statements it sent (a `before_cursor_execute` count); for
`deliver_outbox`, the CPU of the SMTP send itself (activities/mailer.py) is shown apart. The
first `--warmup` validations fill
SQLAlchemy's compiled cache and are not counted.

    .venv/bin/python bench/validation_sql.py --validations 200
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event
from temporalio.testing import ActivityEnvironment

from activities.cra import CraActivities
from activities.mailer import Mailer, OutgoingEmail
from activities.outbox import OutboxActivities
from activities.payouts import PayoutActivities
from activities.proposals import ProposalActivities
from bench.local import sink_and_database
from db.engine import create_engine, session_factory
from schemas.activities import DeliverOutboxInput, TransitionResult
from schemas.cra import CraInput, CraValidationResult
from schemas.enums import PayoutStatus
from schemas.payouts import PayoutTransition, PayoutTransitionKind
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.support.validations import cra_validation, payout_transition, submitted_mission

T = TypeVar("T")

MONTH = "2026-11"
ACTIVITIES = (
    "record_cra_validation",
    "deliver_outbox (validation)",
    "record_payout_transition scheduled",
    "record_payout_transition paid",
    "deliver_outbox (paid)",
)


@dataclass
class Tally:
    """CPU seconds and statements by activity, over the measured validations."""

    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ACTIVITIES, 0.0))
    statements: Counter[str] = field(default_factory=Counter)
    smtp_cpu: float = 0.0
    current: str | None = None


class Bench:
    def __init__(self, url: str, sink: MailSink, tally: Tally) -> None:
        settings = Settings(
            database_url=url, smtp_host=sink.host, smtp_port=sink.port, gateway_secret="bench"
        )
        self.engine = create_engine(url)
        sessions = session_factory(self.engine)
        self.proposals = ProposalActivities(sessions)
        self.cra = CraActivities(sessions)  # its e-mail left to deliver_outbox, measured apart
        self.payouts = PayoutActivities(sessions, settings.ops_email)
        self.outbox = OutboxActivities(sessions, _TimedMailer(settings, tally))
        self.tally = tally
        self.env = ActivityEnvironment()
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        if self.tally.current is not None:
            self.tally.statements[self.tally.current] += 1

    @contextmanager
    def _measuring(self, name: str, measure: bool) -> Iterator[None]:
        if not measure:
            yield
            return
        self.tally.current = name
        started = time.process_time()
        try:
            yield
        finally:
            self.tally.cpu[name] += time.process_time() - started
            self.tally.current = None

    async def run(self, name: str, measure: bool, call: Callable[[], Awaitable[T]]) -> T:
        with self._measuring(name, measure):
            return await call()

    async def mission(self) -> CraInput:
        return await submitted_mission(self.proposals, self.cra, MONTH)

    async def validation(self, inp: CraInput, measure: bool) -> None:
        """One validation's activities, in the order the CRA cycle and the payout run them."""
        v = cra_validation(inp)
        result: CraValidationResult = await self.run(
            ACTIVITIES[0], measure, lambda: self.env.run(self.cra.record_cra_validation, v)
        )
        assert result.applied and len(result.outbox_keys) == 1, result
        await self.deliver(ACTIVITIES[1], measure, result.outbox_keys)
        steps: tuple[tuple[PayoutTransitionKind, PayoutStatus, str], ...] = (
            ("scheduled", PayoutStatus.SCHEDULED, ACTIVITIES[2]),
            ("paid", PayoutStatus.PAID, ACTIVITIES[3]),
        )
        for kind, status, name in steps:
            t = payout_transition(inp, result, kind, status, v.at)
            done = await self.run(name, measure, partial(self.transition, t))
            assert done.applied, (kind, done)
        assert done.outbox_keys
        await self.deliver(ACTIVITIES[4], measure, done.outbox_keys)

    async def transition(self, t: PayoutTransition) -> TransitionResult:
        done: TransitionResult = await self.env.run(self.payouts.record_payout_transition, t)
        return done

    async def deliver(self, name: str, measure: bool, keys: list[str]) -> None:
        sent = await self.run(
            name,
            measure,
            lambda: self.env.run(self.outbox.deliver_outbox, DeliverOutboxInput(keys=keys)),
        )
        assert sent.sent == len(keys), sent


class _TimedMailer(Mailer):
    """The real mailer, its own CPU counted apart (the SMTP exchange is not SQL)."""

    def __init__(self, settings: Settings, tally: Tally) -> None:
        super().__init__(settings)
        self._tally = tally

    async def send(self, email: OutgoingEmail) -> None:
        started = time.process_time()
        try:
            await super().send(email)
        finally:
            if self._tally.current is not None:
                self._tally.smtp_cpu += time.process_time() - started


async def measure(validations: int, warmup: int) -> None:
    tally = Tally()
    async with AsyncExitStack() as stack:
        sink, url = await sink_and_database(stack)
        bench = Bench(url, sink, tally)
        stack.push_async_callback(bench.engine.dispose)
        missions = [await bench.mission() for _ in range(warmup + validations)]
        gc.collect()
        for index, inp in enumerate(missions):
            await bench.validation(inp, measure=index >= warmup)
    _report(tally, validations)


def _report(tally: Tally, n: int) -> None:
    print(f"{n} validations (load {os.getloadavg()[0]:.2f}); per validation:")
    print(f"  {'activity':<38} {'CPU ms':>8} {'statements':>11}")
    for name in ACTIVITIES:
        cpu = tally.cpu[name] * 1000 / n
        print(f"  {name:<38} {cpu:8.2f} {tally.statements[name] / n:11.1f}")
    total = sum(tally.cpu.values()) * 1000 / n
    smtp = tally.smtp_cpu * 1000 / n
    print(f"  {'all':<38} {total:8.2f} {sum(tally.statements.values()) / n:11.1f}")
    print(f"  of which the SMTP sends (mailer)       {smtp:8.2f}")
    print(f"  all but the SMTP sends                 {total - smtp:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(measure(args.validations, args.warmup))


if __name__ == "__main__":
    main()
