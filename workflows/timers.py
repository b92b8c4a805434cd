"""Waiting for "woken, or a deadline", without ever cancelling a timer.

`workflow.wait_condition(..., timeout=...)` starts a timer per wait and cancels it whenever
the condition wins: a mission woken by every signal and update writes a TimerStarted and a
TimerCanceled each time, and temporal-test-server 1.40 strands a workflow whose task cancels
a timer that fired while the task was with the worker (docs/testing.md). A `Deadline` keeps
one timer per instant across wake-ups; a timer whose instant is no longer wanted is left to
fire unheard (one short workflow task, later) instead of being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


class Deadline:
    """The timer of a workflow's main loop: `wait` returns when `woken()` holds or `at` comes."""

    def __init__(self, summary: str) -> None:
        self._summary = summary
        self._at: datetime | None = None
        self._timer: asyncio.Task[None] | None = None

    async def wait(self, at: datetime | None, woken: Callable[[], bool]) -> None:
        if at is None:
            await workflow.wait_condition(woken)
            return
        if at != self._at or self._timer is None:
            delay = at - workflow.now()
            if delay <= timedelta(0):
                return
            self._at = at
            self._timer = asyncio.ensure_future(workflow.sleep(delay, summary=self._summary))
        timer = self._timer
        await workflow.wait_condition(lambda: woken() or timer.done())
