"""The platform as the fault suite and the supervisor's test play it: every event is delivered
until a 2xx answers it, re-sent with the same `event_id` and body after a non-2xx or a broken
connection, with a growing backoff — what the marketplace does — and every answer is kept for
the invariants."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from starter.gateway.signing import signed_headers
from tests.support.factories import APPROVER, envelope
from tests.support.gateway import TEST_SECRET, cra_instants

REQUEST_TIMEOUT = 10.0
"""How long the platform waits for one answer before it gives up on it and redelivers."""

FIRST_BACKOFF = 0.2
MAX_BACKOFF = 2.0


@dataclass
class Delivery:
    """One event and every answer it got, in order (a status, or the connection error)."""

    event: dict[str, Any]
    answers: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.answers) and self.answers[-1].startswith("2")


@dataclass
class Platform:
    """Posts signed events to a live gateway, redelivering until each is answered 2xx."""

    http: httpx.AsyncClient
    give_up_after: float = 180.0
    deliveries: list[Delivery] = field(default_factory=list)
    _answered: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def deliver(self, event: dict[str, Any]) -> Delivery:
        delivery = Delivery(event)
        self.deliveries.append(delivery)
        body = json.dumps(event).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        backoff = FIRST_BACKOFF
        while True:
            try:
                response = await self.http.post(
                    "/events",
                    content=body,
                    headers=signed_headers(body, TEST_SECRET),
                    timeout=REQUEST_TIMEOUT,
                )
                delivery.answers.append(str(response.status_code))
                if response.is_success:
                    async with self._answered:
                        self._answered.notify_all()
                    return delivery
            except httpx.HTTPError as error:
                delivery.answers.append(type(error).__name__)
            if loop.time() > deadline:
                return delivery  # never accepted: the invariants report it
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def file(self, mission_id: str, month: str, days: str = "1") -> Delivery:
        """The provider files the month's CRA at `cra_instants`."""
        submitted_at, _ = cra_instants(month)
        data = {"mission_id": mission_id, "month": month, "days": days}
        return await self.deliver(envelope("cra.submitted", data, occurred_at=submitted_at))

    async def validate(self, mission_id: str, month: str) -> Delivery:
        """The approver validates the month's CRA at `cra_instants` (a dated business event)."""
        _, validated_at = cra_instants(month)
        data = {"mission_id": mission_id, "month": month, "approver_id": APPROVER}
        return await self.deliver(envelope("cra.validated", data, occurred_at=validated_at))

    async def until_accepted(self, count: int, within: float) -> None:
        """Until `count` deliveries were answered 2xx; TimeoutError after `within` seconds."""
        async with self._answered:
            await asyncio.wait_for(
                self._answered.wait_for(lambda: sum(d.accepted for d in self.deliveries) >= count),
                within,
            )

    def answers(self) -> Counter[str]:
        """How often each answer came back, over every delivery attempt."""
        return Counter(answer for d in self.deliveries for answer in d.answers)

    def unanswered(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.accepted]
