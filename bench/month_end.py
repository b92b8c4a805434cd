"""The month-end surge, black box through the gateway, beside the bare engine's floor.

Starts `contracting dev` of its own (temp dir, free ports, this checkout's code) unless given
a stack by flags; measures the floor (`--floor-workflows` workflows that wait for a signal and
run one no-op activity, on the same Temporal server); brings `--missions` missions to
`in_progress` on the four offers, each with its CRAs of the last months filed; then

- the burst: every mission's oldest CRA validated at once;
- the sustained rate: the next months' CRAs validated at `--rate` per second for
  `--duration` seconds;

and prints a markdown table: completions per second (a validation is complete when its
invoice and payout rows are written) and the ratio to the floor, latencies p50/p99 (gateway
POST; validation → invoice row; validation → the provider's e-mail sent), CPU seconds per
process, the worker's RSS, history events per mission-month by workflow.

    .venv/bin/python bench/month_end.py                 # 200 missions, rate 10/s for 60 s
    .venv/bin/python bench/month_end.py --quick         # a smoke run (under two minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.drive import Gateway, Month, Unanswered, mission_with_filed_cras, validate
from bench.floor import Floor, measure_floor
from bench.stack import DevStack, Endpoints, cpu_snapshot, cpu_spent, rss_bytes
from bench.stats import Latency, markdown_table, per_second, rate, ratio
from db.engine import create_engine
from schemas.ids import cra_workflow_id, mission_workflow_id, payout_workflow_id

POLL = 0.25
"""How often the database is read back: the resolution of `validation → invoice row`."""
SETUP_PARALLEL = 20


@dataclass
class Phase:
    """One phase's validations: when each was first posted, and what the database says."""

    name: str
    months: list[Month]
    posted: dict[Month, datetime] = field(default_factory=dict)
    completed: dict[Month, datetime] = field(default_factory=dict)
    mailed: dict[Month, datetime] = field(default_factory=dict)
    documents: int = 0
    post_latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    worker_rss: int = 0
    timed_out: bool = False
    unanswered: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        if not self.posted or not self.completed:
            return 0.0
        return (max(self.completed.values()) - min(self.posted.values())).total_seconds()

    @property
    def per_second(self) -> float | None:
        return rate(len(self.completed), self.elapsed)

    def latency(self, ends: dict[Month, datetime]) -> Latency:
        return Latency.of([(ends[m] - self.posted[m]).total_seconds() for m in ends])


async def written(engine: AsyncEngine, phase: Phase) -> None:
    """Read back the invoice and payout rows (when first seen), the provider's e-mail (when
    sent) and the documents of the phase's validations."""
    missions = sorted({m for m, _ in phase.months})
    wanted = set(phase.posted)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT i.mission_id, i.month "
                "FROM invoices i JOIN payouts p USING (mission_id, month) "
                "WHERE i.mission_id = ANY(:missions)"
            ),
            {"missions": missions},
        )
        # When the rows were first seen: their created_at is their transaction's start,
        # before whatever else the transaction does (rendering) and its commit.
        seen = datetime.now(UTC)
        for m, mo in rows:
            if (m, mo) in wanted:
                phase.completed.setdefault((m, mo), seen)
        keys = {f"cra.validated:{m}:{mo}:provider": (m, mo) for m, mo in phase.posted}
        rows = await conn.execute(
            text(
                "SELECT outbox_key, sent_at FROM email_outbox "
                "WHERE outbox_key = ANY(:keys) AND sent_at IS NOT NULL"
            ),
            {"keys": list(keys)},
        )
        phase.mailed = {keys[key]: at for key, at in rows}
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM billing_documents d "
                "WHERE d.mission_id = ANY(:missions) AND (d.mission_id || ' ' || d.month) "
                "= ANY(:pairs)"
            ),
            {"missions": missions, "pairs": [f"{m} {mo}" for m, mo in phase.months]},
        )
        phase.documents = int(count or 0)


async def until_written(
    engine: AsyncEngine, phase: Phase, posting: asyncio.Future[Any], within: float
) -> None:
    """Read the phase's rows back every POLL seconds until every posted validation is written
    and mailed, at most `within` seconds after the last one was accepted."""
    deadline: float | None = None
    while True:
        await written(engine, phase)
        if posting.done():
            deadline = deadline or time.monotonic() + within
            if len(phase.completed) == len(phase.posted) == len(phase.mailed):
                return
            if time.monotonic() > deadline:
                phase.timed_out = True
                return
        await asyncio.sleep(POLL)


async def run_phase(
    phase: Phase,
    gateway: Gateway,
    engine: AsyncEngine,
    stack: Endpoints,
    per_second_rate: float | None,
    within: float,
) -> None:
    """Post the phase's validations (all at once, or one every 1/rate s), wait until every
    one is written (at most `within` seconds), and record what it cost."""
    before = cpu_snapshot(stack.pids)
    start_latencies = len(gateway.attempts.latencies)
    began = time.monotonic()

    async def one(index: int, month: Month) -> None:
        if per_second_rate:
            await asyncio.sleep(max(0.0, began + index / per_second_rate - time.monotonic()))
        phase.posted[month] = datetime.now(UTC)  # first sent; the rows may come before the 2xx
        try:
            await validate(gateway, *month)
        except Unanswered as error:
            del phase.posted[month]
            phase.unanswered.append(str(error))

    # The database is read back while the validations are posted: a row written before the
    # last validation is accepted is seen when it is written.
    posting = asyncio.ensure_future(
        asyncio.gather(*(one(i, m) for i, m in enumerate(phase.months)))
    )
    await until_written(engine, phase, posting, within)
    await posting
    phase.cpu = cpu_spent(before, cpu_snapshot(stack.pids))
    phase.post_latencies = gateway.attempts.latencies[start_latencies:]
    if "worker" in stack.pids:
        phase.worker_rss = rss_bytes(stack.pids["worker"])
    print(
        f"{phase.name}: {len(phase.completed)}/{len(phase.months)} written, "
        f"{len(phase.mailed)} mailed in {phase.elapsed:.1f} s"
        + (" (TIMED OUT)" if phase.timed_out else "")
        + (f", {len(phase.unanswered)} never accepted" if phase.unanswered else "")
        + f"; non-2xx so far {gateway.attempts.refused}",
        file=sys.stderr,
    )


@dataclass
class Histories:
    """Events per mission-month of a sample of missions, by workflow."""

    mission: list[float] = field(default_factory=list)
    cycle: list[int] = field(default_factory=list)
    payout: list[int] = field(default_factory=list)


async def history_length(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events)


async def histories(
    client: Client, before: dict[str, int], validated: Sequence[Month]
) -> Histories:
    """For each sampled mission (`before`: its history length once in progress, before its
    CRAs were filed): mission events added per validated month, and each validated month's
    CRA cycle and payout history."""
    result = Histories()
    for mission, length in before.items():
        months = [mo for m, mo in validated if m == mission]
        if not months:
            continue
        now = await history_length(client, mission_workflow_id(mission))
        result.mission.append((now - length) / len(months))
        for month in months:
            result.cycle.append(await history_length(client, cra_workflow_id(mission, month)))
            result.payout.append(await history_length(client, payout_workflow_id(mission, month)))
    return result


def mean(values: Sequence[float]) -> str:
    return f"{sum(values) / len(values):.0f}" if values else "—"


def report(
    args: argparse.Namespace,
    floor: Floor,
    floor_cpu: dict[str, float],
    setup_seconds: float,
    burst: Phase,
    sustained: Phase,
    history: Histories,
    peak_rss: int,
) -> str:
    """The markdown table (and the run's sizes above it)."""
    f = floor.per_second
    rows = [
        [
            "completions per second (invoice + payout rows)",
            f"{per_second(f)} ({floor.workflows} in {floor.elapsed:.1f} s)",
            f"{per_second(burst.per_second)}, {ratio(burst.per_second, f)} of the floor "
            f"({len(burst.completed)}/{len(burst.months)} in {burst.elapsed:.1f} s"
            f"{_unanswered(burst)})",
            f"{per_second(sustained.per_second)} for {args.rate:g}/s offered, "
            f"{ratio(sustained.per_second, f)} of the floor "
            f"({len(sustained.completed)}/{len(sustained.months)} in "
            f"{sustained.elapsed:.1f} s{_unanswered(sustained)})",
        ],
        [
            "gateway `POST /events` (each attempt)",
            "—",
            Latency.of(burst.post_latencies).cell(),
            Latency.of(sustained.post_latencies).cell(),
        ],
        [
            "validation posted → invoice + payout rows",
            "—",
            burst.latency(burst.completed).cell(),
            sustained.latency(sustained.completed).cell(),
        ],
        [
            "validation posted → provider's e-mail sent",
            "—",
            burst.latency(burst.mailed).cell(),
            sustained.latency(sustained.mailed).cell(),
        ],
        [
            "documents written (billing_documents rows)",
            "—",
            str(burst.documents),
            str(sustained.documents),
        ],
    ]
    # The floor's CPU (its worker runs in the benchmark's process) beside the phases': what a
    # completion costs the machine, process by process, and all together.
    names = sorted(set(burst.cpu) | set(sustained.cpu) | set(floor_cpu))
    for name in [*names, "all processes"]:
        every = name == "all processes"
        spent = sum(floor_cpu.values()) if every else floor_cpu.get(name, 0.0)
        cells = [f"{spent:.1f} s ({spent / floor.workflows * 1000:.0f} ms per workflow)"]
        for phase in (burst, sustained):
            spent = sum(phase.cpu.values()) if every else phase.cpu.get(name, 0.0)
            each = spent / len(phase.completed) * 1000 if phase.completed else 0.0
            cells.append(f"{spent:.1f} s ({each:.0f} ms per validation)")
        rows.append([f"CPU {name}", *cells])
    rows.append(
        [
            "worker RSS (end of phase; peak of the run)",
            "—",
            _mb(burst.worker_rss),
            f"{_mb(sustained.worker_rss)}; peak {_mb(peak_rss)}",
        ]
    )
    total = [
        float(mean(history.mission)) if history.mission else 0.0,
        float(mean(history.cycle)) if history.cycle else 0.0,
        float(mean(history.payout)) if history.payout else 0.0,
    ]
    rows.append(
        [
            "history events per mission-month",
            "—",
            f"mission {mean(history.mission)} (filing + validation), CRA cycle "
            f"{mean(history.cycle)}, payout {mean(history.payout)} (not yet paid)",
            f"{sum(total):.0f} all together (sample of {args.history_sample} missions)",
        ]
    )
    table = markdown_table(
        ["figure", "floor", f"burst ({len(burst.months)} at once)", "sustained"], rows
    )
    refused = ", ".join(f"{k}×{v}" for k, v in sorted(args.refused.items())) or "none"
    # A phase ends when its rows and e-mails are there; what follows (the files, the mission
    # and the other open cycles told, the payouts' first tasks) spills into the next phase's
    # CPU: the two phases together are what a validation costs.
    validations = len(burst.completed) + len(sustained.completed)
    both = sum(burst.cpu.values()) + sum(sustained.cpu.values())
    each = both / validations * 1000 if validations else 0.0
    head = (
        f"{args.missions} missions (offers basic/express/flash/back_to_back), set up in "
        f"{setup_seconds:.0f} s; sustained {args.rate:g}/s for {args.duration:g} s; "
        f"non-2xx answers redelivered: {refused}; load average before the run "
        f"{args.load_before}, after {_load()}; {os.cpu_count()} CPUs. Both phases together: "
        f"{both:.1f} s of CPU for {validations} validations, {each:.0f} ms each (the floor: "
        f"{sum(floor_cpu.values()) / floor.workflows * 1000:.0f} ms per workflow)."
    )
    return head + "\n\n" + table


def _unanswered(phase: Phase) -> str:
    return f"; {len(phase.unanswered)} never accepted" if phase.unanswered else ""


def _mb(value: int) -> str:
    return f"{value / 1e6:.0f} MB" if value else "—"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def sample_peak_rss(pid: int | None, peak: list[int]) -> None:
    while pid is not None:
        peak[0] = max(peak[0], rss_bytes(pid))
        await asyncio.sleep(1.0)


async def bench(args: argparse.Namespace, stack: Endpoints) -> str:
    months = 1 + math.ceil(args.rate * args.duration / args.missions)
    if months > 5:
        raise SystemExit(
            f"--rate {args.rate:g} × --duration {args.duration:g} needs {months - 1} months "
            f"of CRAs per mission with {args.missions} missions (5 at most, the missions last "
            "150 days): raise --missions or lower the rate or the duration"
        )
    async with AsyncExitStack() as exits:
        client = await Client.connect(stack.temporal_address, namespace=stack.namespace)
        engine = create_engine(stack.database_url)
        exits.push_async_callback(engine.dispose)
        limits = httpx.Limits(max_connections=max(100, args.missions))
        http = await exits.enter_async_context(
            httpx.AsyncClient(
                base_url=stack.gateway_url,
                limits=limits,
                # The read routes (the set-up polls GET /missions/{id}) need a bearer token.
                headers={"Authorization": f"Bearer {stack.read_token}"} if stack.read_token else {},
            )
        )
        gateway = Gateway(http, stack.gateway_secret)
        peak = [0]
        sampler = asyncio.create_task(sample_peak_rss(stack.pids.get("worker"), peak))

        print(f"floor: {args.floor_workflows} workflows…", file=sys.stderr)
        before_floor = cpu_snapshot(stack.pids)
        floor = await measure_floor(client, args.floor_workflows)
        floor_cpu = cpu_spent(before_floor, cpu_snapshot(stack.pids))
        print(f"floor: {floor.per_second:.1f}/s", file=sys.stderr)

        print(f"setting up {args.missions} missions × {months} months…", file=sys.stderr)
        setup_began = time.monotonic()
        gate = asyncio.Semaphore(SETUP_PARALLEL)
        sample: dict[str, int] = {}

        async def one(number: int) -> list[Month]:
            async with gate:
                got = await mission_with_filed_cras(gateway, number, months)
                if number <= args.history_sample:
                    sample[got[0][0]] = 0
                return got

        missions = await asyncio.gather(*(one(n) for n in range(1, args.missions + 1)))
        setup_seconds = time.monotonic() - setup_began
        print(f"set up in {setup_seconds:.0f} s", file=sys.stderr)
        for mission in sample:
            # the CRAs were filed already: count from the mission's state once in progress
            sample[mission] = await history_length(client, mission_workflow_id(mission))

        burst = Phase("burst", [months_of[0] for months_of in missions])
        await run_phase(burst, gateway, engine, stack, None, args.timeout)
        later = [m[i] for i in range(1, months) for m in missions]
        count = min(len(later), round(args.rate * args.duration))
        sustained = Phase("sustained", later[:count])
        await run_phase(sustained, gateway, engine, stack, args.rate, args.timeout)

        validated = [*burst.completed, *sustained.completed]
        history = await histories(client, sample, validated)
        sampler.cancel()
        args.refused = gateway.attempts.refused
        return report(args, floor, floor_cpu, setup_seconds, burst, sustained, history, peak[0])


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missions", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="validations per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds at --rate")
    parser.add_argument("--floor-workflows", type=int, default=1000)
    parser.add_argument("--history-sample", type=int, default=5, help="missions measured")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="bound of each phase's wait (s)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 8 missions, 4/s for 4 s, floor 100"
    )
    parser.add_argument("--temporal-address", help="use this Temporal server (host:port)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--database-url", help="the stack's PostgreSQL (postgresql://…)")
    parser.add_argument("--gateway-url", help="the stack's gateway (http://host:port)")
    parser.add_argument(
        "--gateway-secret",
        default=os.environ.get("CONTRACTING_GATEWAY_SECRET"),
        help="the gateway's HMAC secret (default: $CONTRACTING_GATEWAY_SECRET)",
    )
    parser.add_argument(
        "--read-token",
        default=os.environ.get("CONTRACTING_READ_TOKEN"),
        help="a token of the gateway's CONTRACTING_READ_TOKENS (default: $CONTRACTING_READ_TOKEN)",
    )
    parser.add_argument(
        "--pid",
        action="append",
        default=[],
        metavar="NAME=PID",
        help="a process of a given stack to measure (worker=1234, temporal=…), repeatable",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.missions, args.rate, args.duration, args.floor_workflows = 8, 4.0, 4.0, 100
        args.history_sample = min(args.history_sample, 2)
    given = [args.temporal_address, args.database_url, args.gateway_url]
    if any(given) and not all(given):
        parser.error("--temporal-address, --database-url and --gateway-url go together")
    if all(given) and not args.gateway_secret:
        parser.error("a given gateway needs --gateway-secret (or CONTRACTING_GATEWAY_SECRET)")
    if args.missions < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--missions, --rate and --duration must be positive")
    args.load_before = _load()
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if args.temporal_address:
        pids = {}
        for item in args.pid:
            name, _, pid = item.partition("=")
            if not pid.isdigit():
                raise SystemExit(f"--pid {item!r}: expected NAME=PID, e.g. worker=1234")
            pids[name] = int(pid)
        endpoints = Endpoints(
            args.temporal_address,
            args.namespace,
            args.database_url,
            args.gateway_url,
            args.gateway_secret,
            pids,
            args.read_token,
        )
        print(asyncio.run(bench(args, endpoints)))
        return
    stack = DevStack()
    try:
        print("starting `contracting dev`…", file=sys.stderr)
        endpoints = stack.start()
        print(asyncio.run(bench(args, endpoints)))
    except subprocess.SubprocessError as error:
        raise SystemExit(f"the dev stack failed: {error}") from error
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
