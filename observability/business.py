"""Business metrics from the ledger (PostgreSQL), computed when Prometheus scrapes and cached
for a few seconds, so that however often (or however many) scrapers come, the database sees
at most one round of these queries per `ttl`.

- `contracting_payouts_due_today` / `..._amount_euros`: scheduled payouts whose date is today
  (Paris business date), and what they pay (net);
- `contracting_payouts_blocked`: open payouts waiting for an invoice that was blocked (its
  amounts refused, `workflows/payout.py`): a provider is not paid until someone acts;
- `contracting_transitions_failed`: the timeline rows `transition.failed` (a transition the
  ledger refused, ops alerted: `workflows/transitions.py`), cumulative;
- `contracting_missions{stage}`: missions by stage."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import async_sessionmaker

from db.models import Invoice, Mission, MissionEvent, Payout
from domain.clock import paris_date
from schemas.enums import InvoiceStatus, MissionStage, PayoutStatus

log = logging.getLogger(__name__)

FAILED_TRANSITION = "transition.failed"
OPEN_PAYOUT = (
    PayoutStatus.SCHEDULED,
    PayoutStatus.WAITING_CLIENT_PAYMENT,
    PayoutStatus.WAITING_INVOICE_IMPORT,
)


@dataclass(frozen=True)
class LedgerFigures:
    payouts_due_today: int
    payouts_due_today_amount: Decimal
    payouts_blocked: int
    transitions_failed: int
    missions_by_stage: dict[str, int] = field(default_factory=dict)


async def read_figures(sessions: async_sessionmaker[Any], today: date) -> LedgerFigures:
    """One round of the queries (each an aggregate on indexed or small tables)."""
    async with sessions() as session:
        due_count, due_amount = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Payout.net_amount), 0))
                .select_from(Payout)
                .where(Payout.status == PayoutStatus.SCHEDULED, Payout.due_on == today)
            )
        ).one()
        blocked = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(Payout)
                .join(Invoice, Invoice.id == Payout.invoice_id)
                .where(Payout.status.in_(OPEN_PAYOUT), Invoice.status == InvoiceStatus.BLOCKED)
            )
        ).scalar_one()
        failed = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(MissionEvent)
                .where(MissionEvent.kind == FAILED_TRANSITION)
            )
        ).scalar_one()
        by_stage = sa.select(Mission.stage, sa.func.count()).group_by(Mission.stage)
        stages = {stage: count for stage, count in (await session.execute(by_stage)).all()}
    return LedgerFigures(
        payouts_due_today=int(due_count),
        payouts_due_today_amount=Decimal(due_amount),
        payouts_blocked=int(blocked),
        transitions_failed=int(failed),
        missions_by_stage={stage.value: int(stages.get(stage, 0)) for stage in MissionStage},
    )


class LedgerMetrics(Collector):
    """A Prometheus collector of the ledger's figures. `refresh()` (awaited by the metrics
    endpoint before it renders) re-reads them when older than `ttl` seconds; `collect()`
    only reports the last figures read, so it never touches the database itself."""

    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        *,
        ttl: float = 15.0,
        today: Callable[[], date] = lambda: paris_date(datetime.now(UTC)),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._today = today
        self._monotonic = monotonic
        self._figures: LedgerFigures | None = None
        self._read_at: float | None = None
        self._lock = asyncio.Lock()
        self.reads = 0
        """How many rounds of queries were made (the cache's effect, for tests)."""

    async def refresh(self) -> None:
        """Re-read the figures if the cached ones are older than the ttl; concurrent scrapes
        wait for one read. A failed read keeps the previous figures (reported stale by
        `contracting_ledger_metrics_age_seconds`) and is logged."""
        async with self._lock:
            if self._read_at is not None and self._monotonic() - self._read_at < self._ttl:
                return
            try:
                self._figures = await read_figures(self._sessions, self._today())
            except Exception as exc:  # a scrape must still answer with the other metrics
                log.warning("could not read the business metrics from the database: %s", exc)
                return
            self._read_at = self._monotonic()
            self.reads += 1

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self._figures
        if figures is None or self._read_at is None:
            return
        yield GaugeMetricFamily(
            "contracting_ledger_metrics_age_seconds",
            "Seconds since the business metrics were read from the database",
            value=self._monotonic() - self._read_at,
        )
        yield GaugeMetricFamily(
            "contracting_payouts_due_today",
            "Scheduled payouts whose payout date is today (Europe/Paris)",
            value=figures.payouts_due_today,
        )
        yield GaugeMetricFamily(
            "contracting_payouts_due_today_amount_euros",
            "Net amount of the scheduled payouts due today, in euros",
            value=float(figures.payouts_due_today_amount),
        )
        yield GaugeMetricFamily(
            "contracting_payouts_blocked",
            "Open payouts whose invoice is blocked (amounts refused): nobody is paid until "
            "a corrected invoice is imported",
            value=figures.payouts_blocked,
        )
        yield GaugeMetricFamily(
            "contracting_transitions_failed",
            "Timeline rows transition.failed so far (transitions the ledger refused)",
            value=figures.transitions_failed,
        )
        stages = GaugeMetricFamily("contracting_missions", "Missions by stage", labels=["stage"])
        for stage, count in figures.missions_by_stage.items():
            stages.add_metric([stage], count)
        yield stages
