"""What logging costs the event loop: 10,000 log calls from 50 tasks, written by a handler
run on the loop (`logging.basicConfig`'s StreamHandler: format and write under the handler's
lock, in the caller) or handed to a queue whose listener thread formats and writes
(`observability.logs.configure_logging`, what the worker and the gateway use).

Each mode runs alone, then with two threads logging at the same time (as the SDK's core and
other threads do in a worker), which makes the loop's calls wait on the handler's lock. The
lines go down a pipe to another process (`cat > /dev/null`), as a container's stderr goes to
its runtime's log reader. Prints, per mode, the time the loop spent in the 10,000 calls (µs
per call) and the time until the last line was written.

    PYTHONPATH=. .venv/bin/python bench/log_throughput.py [--format json] [--calls 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import subprocess
import threading
import time
from typing import IO

from observability import context
from observability.logs import ContextFilter, LogFormat, configure_logging, formatter, stop_logging

TASKS = 50


def on_the_loop(log_format: LogFormat, stream: IO[str]) -> None:
    """The previous set-up: one StreamHandler on the root logger, run by the caller."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)


async def log_from_tasks(calls: int) -> float:
    """Seconds the loop takes to make `calls` log calls from TASKS tasks."""
    log = logging.getLogger("contracting.bench")
    per_task = calls // TASKS

    async def task(n: int) -> None:
        with context.scope(mission_id=f"P-{n}", event_id=f"evt-{n}"):
            for i in range(per_task):
                log.info("activity %d of mission %s recorded", i, n)
                if i % 20 == 0:
                    await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(task(n) for n in range(TASKS)))
    return time.perf_counter() - started


def run(mode: str, log_format: LogFormat, calls: int, threads: int) -> tuple[float, float]:
    """(seconds on the loop, seconds until written) for one mode."""
    reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    with io.TextIOWrapper(reader.stdin, line_buffering=False) as out:
        if mode == "queue":
            configure_logging(log_format, stream=out)
        else:
            on_the_loop(log_format, out)
        stop = threading.Event()

        def background() -> None:
            other = logging.getLogger("temporalio.bench")
            while not stop.is_set():
                other.info("a line from another thread")

        others = [threading.Thread(target=background) for _ in range(threads)]
        for thread in others:
            thread.start()
        started = time.perf_counter()
        on_loop = asyncio.run(log_from_tasks(calls))
        stop.set()
        for thread in others:
            thread.join()
        stop_logging()
        out.flush()
        written = time.perf_counter() - started
    reader.wait()
    return on_loop, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.calls} log calls from {TASKS} tasks, {args.format} lines, best of {args.repeat}")
    print(f"{'handler':<28}{'threads':>8}{'loop s':>9}{'µs/call':>9}{'written s':>11}")
    for threads in (0, 2):
        for mode in ("stream", "queue"):
            best = min(
                (run(mode, args.format, args.calls, threads) for _ in range(args.repeat)),
                key=lambda result: result[0],
            )
            name = "StreamHandler on the loop" if mode == "stream" else "QueueHandler + listener"
            print(
                f"{name:<28}{threads:>8}{best[0]:>9.3f}{best[0] / args.calls * 1e6:>9.1f}"
                f"{best[1]:>11.3f}"
            )


if __name__ == "__main__":
    main()
