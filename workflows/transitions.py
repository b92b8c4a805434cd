"""The transition queue every main loop shares.

Handlers change the in-memory state and `put` a transition; the main loop `drain`s the queue:
each transition written in order by one idempotent activity, its emails then delivered in the
background, so an update answers at once and an SMTP outage never holds the next transition.
A run waits for every delivery (`delivered`) before it ends; one that continues as new waits
only for the attempts in flight (`quiet`) and hands the emails still undelivered to the next
run (`undelivered`) instead of waiting for SMTP to come back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from workflows.effects import Courier

T = TypeVar("T")


class TransitionQueue(Generic[T]):
    """Transitions waiting to be written; `write` records one and returns its outbox keys."""

    def __init__(self, write: Callable[[T], Awaitable[list[str]]]) -> None:
        self._write = write
        self._pending: list[T] = []
        self._courier = Courier()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def put(self, transition: T) -> None:
        self._pending.append(transition)

    async def drain(self) -> None:
        """Write the queued transitions in order (including those queued meanwhile)."""
        while self._pending:
            self.deliver(await self._write(self._pending.pop(0)))

    def deliver(self, keys: list[str]) -> None:
        """Send emails in the background; `delivered` waits for them."""
        self._courier.deliver(keys)

    def quiet(self) -> bool:
        return self._courier.quiet()

    def undelivered(self) -> list[str]:
        return self._courier.undelivered()

    async def delivered(self) -> None:
        await self._courier.delivered()
