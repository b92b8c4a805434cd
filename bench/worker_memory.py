"""The worker's memory per cached mission, and what evicting one costs.

Starts `contracting dev` of its own (its worker configured by the usual `CONTRACTING_WORKER_*`
variables, e.g. `CONTRACTING_WORKER_MAX_CACHED_WORKFLOWS`), brings one mission to
`in_progress` through the gateway (bench/drive.py), then starts copies of it: the real
MissionWorkflow, started with that mission's own input and state under a new id (what a
continue-as-new does), so that each copy runs one workflow task and waits on its next
deadline — cached in the worker, no activity, no database work. Prints the worker's RSS once
the copies are waiting, at each of `--steps` (cumulative counts), then queries `--queries`
missions (the oldest, evicted first by a bounded cache) to show what a cache miss costs: a
query on an evicted workflow replays its history.

    .venv/bin/python bench/worker_memory.py --steps 1000,10000
    CONTRACTING_WORKER_MAX_CACHED_WORKFLOWS=500 .venv/bin/python bench/worker_memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.drive import Gateway, mission_with_filed_cras
from bench.floor import gather_bounded
from bench.stack import DevStack, Endpoints, rss_bytes
from bench.stats import markdown_table, seconds
from codec.converter import build_data_converter
from codec.keys import read_key_file
from schemas.ids import mission_workflow_id
from schemas.mission import MissionInput, MissionState
from schemas.names import MISSION_WORKFLOW, STATE_QUERY
from settings import Settings
from worker import worker_options
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

SETTLE = 3.0
"""Seconds the worker is left alone before its RSS is read (the last tasks finish)."""


async def template(client: Client, mission_id: str) -> MissionInput:
    """The mission's start input with its current state: what its next run would get."""
    handle = client.get_workflow_handle(mission_workflow_id(mission_id))
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = await client.data_converter.decode(started.input.payloads, [MissionInput])
    state = await handle.query(STATE_QUERY, result_type=MissionState)
    assert isinstance(inp, MissionInput)
    return inp.model_copy(update={"state": state})


def copy_of(inp: MissionInput) -> MissionInput:
    """The same mission under a new id."""
    assert inp.state is not None
    mission_id = f"W-{uuid.uuid4().hex[:10]}"
    return inp.model_copy(
        update={
            "event_id": f"evt-{uuid.uuid4().hex}",
            "proposal": inp.proposal.model_copy(update={"proposal_id": mission_id}),
            "state": inp.state.model_copy(update={"mission_id": mission_id}),
        }
    )


async def until_waiting(client: Client, workflow_ids: Sequence[str], within: float) -> None:
    """Until the last workflows started have completed their first workflow task."""
    deadline = time.monotonic() + within
    for workflow_id in workflow_ids[-20:]:
        while True:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            if any(e.HasField("workflow_task_completed_event_attributes") for e in history.events):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workflow_id} did not run its first task in {within:.0f} s")
            await asyncio.sleep(0.5)


def converter_of(endpoints: Endpoints) -> DataConverter:
    """The stack's data converter: its histories are encrypted with its codec keys."""
    if endpoints.codec_keys_file is None:
        return pydantic_data_converter
    return build_data_converter(read_key_file(endpoints.codec_keys_file, "the stack's codec keys"))


async def measure(args: argparse.Namespace, stack: DevStack) -> str:
    endpoints = stack.start()
    client = await Client.connect(
        endpoints.temporal_address,
        namespace=endpoints.namespace,
        data_converter=converter_of(endpoints),
    )
    # The read routes (the set-up polls GET /missions/{id}) need a bearer token.
    headers = {"Authorization": f"Bearer {endpoints.read_token}"} if endpoints.read_token else {}
    async with httpx.AsyncClient(base_url=endpoints.gateway_url, headers=headers) as http:
        gateway = Gateway(http, endpoints.gateway_secret)
        [(mission_id, _)] = await mission_with_filed_cras(gateway, 1, 1)
    inp = await template(client, mission_id)
    if not args.in_process:
        return await load(args, client, inp, stack.settings.task_queue, endpoints.pids["worker"])
    # The same workflows in a worker of this process, on a task queue of its own: to compare
    # runners and to see where Python allocates (tracemalloc).
    queue = f"bench-memory-{uuid.uuid4().hex[:8]}"
    options = worker_options(Settings())
    runner = UnsandboxedWorkflowRunner() if args.unsandboxed else WORKFLOW_RUNNER
    worker = Worker(
        client,
        task_queue=queue,
        workflows=list(WORKFLOWS),
        workflow_runner=runner,
        **options,
    )
    async with worker:
        if args.tracemalloc:
            tracemalloc.start(1)
        return await load(args, client, inp, queue, os.getpid())


async def load(
    args: argparse.Namespace, client: Client, inp: MissionInput, queue: str, worker: int
) -> str:
    """Start the copies step by step on `queue`, reading the RSS of the process `worker`."""
    await asyncio.sleep(SETTLE)
    before = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    rows = [["1 (the template, through the gateway)", f"{rss_bytes(worker) / 1e6:.0f} MB", "—"]]
    baseline = rss_bytes(worker)
    started: list[str] = []
    for step in args.steps:
        began = time.monotonic()
        inputs = [copy_of(inp) for _ in range(step - len(started))]
        ids = [mission_workflow_id(i.proposal.proposal_id) for i in inputs]
        await gather_bounded(
            [
                client.start_workflow(MISSION_WORKFLOW, i, id=w, task_queue=queue)
                for i, w in zip(inputs, ids, strict=True)
            ],
            50,
        )
        started += ids
        await until_waiting(client, started, args.timeout)
        elapsed = time.monotonic() - began
        await asyncio.sleep(SETTLE)
        rss = rss_bytes(worker)
        per = (rss - baseline) / len(started)
        rows.append(
            [
                f"{len(started)} copies",
                f"{rss / 1e6:.0f} MB",
                f"{per / 1e3:.0f} KB per mission (started at {len(ids) / elapsed:.0f}/s)",
            ]
        )
        print(rows[-1], file=sys.stderr)
    sample = started[: args.queries]
    for label in ("first", "again"):
        failed: list[str] = []

        async def query(workflow_id: str, failed: list[str]) -> None:
            try:
                handle = client.get_workflow_handle(workflow_id)
                await handle.query(STATE_QUERY, result_type=MissionState)
            except RPCError as error:  # a workflow task timed out on a loaded machine
                failed.append(f"{workflow_id}: {error}")

        began = time.monotonic()
        await gather_bounded([query(w, failed) for w in sample], 20)
        elapsed = time.monotonic() - began
        rows.append(
            [
                f"query the {len(sample)} oldest ({label})",
                f"{rss_bytes(worker) / 1e6:.0f} MB",
                f"{len(sample) / elapsed:.0f} queries/s, {seconds(elapsed / len(sample))} each"
                + (f", {len(failed)} failed ({failed[0]})" if failed else ""),
            ]
        )
    cache = os.environ.get("CONTRACTING_WORKER_MAX_CACHED_WORKFLOWS", "1000 (default)")
    where = "the dev stack's worker"
    if args.in_process:
        where = "a worker in the benchmark's process, " + (
            "unsandboxed" if args.unsandboxed else "sandboxed"
        )
    if before is not None:
        print(allocations(before, len(started)), file=sys.stderr)
    head = (
        f"{where}; max_cached_workflows {cache}; history of a copy "
        f"{len((await client.get_workflow_handle(started[0]).fetch_history()).events)} events; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}."
    )
    return head + "\n\n" + markdown_table(["missions", "worker RSS", "per mission"], rows)


def allocations(before: tracemalloc.Snapshot, copies: int, top: int = 15) -> str:
    """The files whose allocations grew most since `before`, per copy."""
    grown = tracemalloc.take_snapshot().compare_to(before, "filename")
    total = sum(stat.size_diff for stat in grown)
    lines = [f"Python allocations: {total / copies / 1e3:.0f} KB per copy, by file:"]
    for stat in grown[:top]:
        lines.append(f"  {stat.size_diff / copies / 1e3:7.1f} KB  {stat.traceback[0].filename}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        default="1000,10000",
        help="cumulative numbers of cached missions at which RSS is read (comma-separated)",
    )
    parser.add_argument("--queries", type=int, default=500, help="missions queried at the end")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the workflows in a worker of this process (its RSS is read)",
    )
    parser.add_argument(
        "--unsandboxed", action="store_true", help="with --in-process: no workflow sandbox"
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="with --in-process: print where the copies' Python memory was allocated",
    )
    args = parser.parse_args(argv)
    if (args.unsandboxed or args.tracemalloc) and not args.in_process:
        parser.error("--unsandboxed and --tracemalloc go with --in-process")
    try:
        args.steps = sorted(int(s) for s in args.steps.split(","))
    except ValueError:
        parser.error(f"--steps {args.steps!r}: expected numbers separated by commas")
    stack = DevStack()
    try:
        print(asyncio.run(measure(args, stack)))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
