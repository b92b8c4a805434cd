"""The marketplace's side of the benchmark: signed events posted to the gateway like the
platform does (the same event_id and body again after a non-2xx or a broken connection, until a
2xx), missions brought to `in_progress` with their CRAs filed, validations timed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain.cra import month_bounds
from starter.gateway.signing import signed_headers
from tests.support.factories import APPROVER, envelope, proposal_submitted
from tests.support.gateway import cra_instants, past_month, provider

OFFERS = ("basic", "express", "flash", "back_to_back")
REQUEST_TIMEOUT = 30.0
MAX_BACKOFF = 2.0
GIVE_UP_AFTER = 600.0
WAIT = 300.0
DOCUMENTS = ("urssaf_vigilance", "kbis", "sworn_statement", "foreign_workers_list")


class Unanswered(RuntimeError):
    """An event the gateway did not accept within GIVE_UP_AFTER seconds of redeliveries."""


@dataclass
class Attempts:
    """Every POST of the benchmark: each answer's latency, and the non-2xx answers."""

    latencies: list[float] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)


@dataclass
class Gateway:
    """Posts signed events to a live gateway, redelivering each until a 2xx."""

    http: httpx.AsyncClient
    secret: str
    attempts: Attempts = field(default_factory=Attempts)

    async def deliver(self, event: dict[str, Any]) -> datetime:
        """Deliver `event` until it is answered 2xx; when it was first sent."""
        body = json.dumps(event).encode()
        first = datetime.now(UTC)
        deadline = time.monotonic() + GIVE_UP_AFTER
        backoff = 0.2
        while True:
            sent = time.monotonic()
            try:
                response = await self.http.post(
                    "/events",
                    content=body,
                    headers=signed_headers(body, self.secret),
                    timeout=REQUEST_TIMEOUT,
                )
                self.attempts.latencies.append(time.monotonic() - sent)
                if response.is_success:
                    return first
                answer = str(response.status_code)
                if response.status_code in (400, 401, 409, 413, 422):
                    raise RuntimeError(f"{event['type']} refused: {response.text}")
            except httpx.HTTPError as error:
                answer = type(error).__name__
            self.attempts.refused[answer] = self.attempts.refused.get(answer, 0) + 1
            if time.monotonic() > deadline:
                raise Unanswered(f"{event['type']} {event['event_id']} never answered 2xx")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def send(self, event_type: str, at: datetime | None = None, **data: Any) -> datetime:
        return await self.deliver(envelope(event_type, data, occurred_at=at))

    async def mission(self, mission_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/missions/{mission_id}", timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        data = response.json()
        assert isinstance(data, dict)
        return data

    async def until(self, mission_id: str, what: str, holds: Any) -> None:
        """Poll the mission's view until `holds(state)`; RuntimeError naming `what` after
        WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if holds((await self.mission(mission_id))["state"]):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mission {mission_id}: {what} not reached in {WAIT:.0f} s")
            await asyncio.sleep(0.5)


Month = tuple[str, str]  # (mission id, YYYY-MM)


def months_back(months: int) -> list[str]:
    """The `months` whole months before this one, oldest first."""
    return [past_month(i) for i in range(months, 0, -1)]


async def mission_with_filed_cras(gateway: Gateway, number: int, months: int) -> list[Month]:
    """A mission on offer `OFFERS[number % 4]` (back-to-back: its provider in Portugal) that
    started on the 1st of the month `months` ago, its provider compliant, each of those months'
    CRA filed (not validated)."""
    offer = OFFERS[number % len(OFFERS)]
    wanted = months_back(months)
    start = month_bounds(wanted[0])[0]
    # back-to-back is offered to providers outside France only (domain-rules.md)
    siren_provider = provider(country="PT") if offer == "back_to_back" else provider()
    siren = str(siren_provider["siren"])
    pid = f"B-{uuid.uuid4().hex[:10]}"
    data = proposal_submitted(
        proposal_id=pid,
        provider=siren_provider,
        start_date=start.isoformat(),
        end_date=(start + timedelta(days=150)).isoformat(),
    )
    await gateway.send("proposal.submitted", **data)
    await gateway.until(
        pid,
        "proposal recorded",
        lambda s: any(e["kind"] == "proposal.submitted" for e in s["timeline"]),
    )
    for step in ("proposal.read", "proposal.rated", "proposal.retained"):
        extra: dict[str, Any] = {"interesting": True} if step == "proposal.rated" else {}
        await gateway.send(step, proposal_id=pid, **extra)
    issued = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    for kind in DOCUMENTS:
        document_id = f"DOC-{uuid.uuid4().hex[:12]}"
        await gateway.send(
            "document.uploaded",
            document_id=document_id,
            provider_siren=siren,
            kind=kind,
            issued_on=issued,
            file_ref=f"s3://docs/{document_id}.pdf",
        )
        await gateway.send("document.reviewed", document_id=document_id, accepted=True)
    await gateway.send("purchase_order.confirmed", proposal_id=pid, po_number=f"PO-{number}")
    await gateway.send(
        "contract.signed",
        proposal_id=pid,
        signed_on=start.isoformat(),
        payment_offer=offer,
        special_conditions_ref=f"CP-{number}",
    )
    await gateway.until(
        pid,
        f"in_progress with the CRA cycles of {wanted} open",
        lambda s: s["stage"] == "in_progress" and set(wanted) <= set(s["cra_months"]),
    )
    for month in wanted:
        submitted_at, _ = cra_instants(month)
        await gateway.send("cra.submitted", submitted_at, mission_id=pid, month=month, days="1")
    return [(pid, month) for month in wanted]


async def validate(gateway: Gateway, mission_id: str, month: str) -> datetime:
    """The approver validates the month's CRA (dated its last business day, 17:00 Paris):
    when the validation was first posted."""
    _, validated_at = cra_instants(month)
    return await gateway.send(
        "cra.validated", validated_at, mission_id=mission_id, month=month, approver_id=APPROVER
    )
