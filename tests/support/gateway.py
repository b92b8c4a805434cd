"""The platform's side of the gateway tests (tests/integration/): signed events posted to the
gateway app, missions walked to a month whose CRA cycle is open, CRAs filed and validated at
instants the test chooses.

The gateway tests run on the real dev server: its clock is the wall clock, so `today` is the
real Paris date, and the dates a test asserts come from the events it sends (`past_month`,
`cra_instants`), never from the hour it runs at (docs/testing.md).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Interval, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from db.models import ProcessedEvent
from domain.calendar import previous_business_day_on_or_before
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds, month_of
from schemas.mission import MissionView
from settings import Settings
from starter.gateway.api import create_app
from starter.gateway.events import InvalidEvent, parse_event
from starter.gateway.processor import EventProcessor, content_digest
from starter.gateway.signing import SIGNATURE_HEADER, signed_headers
from tests.support.factories import (
    APPROVER,
    PROVIDER_ADDRESS,
    PROVIDER_REGISTRATION,
    envelope,
    foreign_address,
    new_siren,
    proposal_submitted,
)
from tests.support.waits import eventually

TEST_SECRET = "test-secret"
TEST_OPS_TOKEN = "test-ops-read-token-0123456789"
TEST_SUPPORT_TOKEN = "test-support-read-token-0123456789"
TEST_READ_TOKENS = f"ops:{TEST_OPS_TOKEN},support:{TEST_SUPPORT_TOKEN}"
"""The gateway's read tokens in the test stacks (`stack_settings`); the test clients send the
ops one (`read_headers`)."""


def read_headers(token: str = TEST_OPS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def gateway_of(
    processor: EventProcessor, settings: Settings
) -> AsyncIterator[GatewayTestClient]:
    """A gateway app in front of `processor` (its own task queue, RPC timeout or lease); an
    unhandled error is answered 500, as the ASGI server would, instead of raised."""
    app = create_app(settings, processor=processor)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=read_headers()
    ) as http:
        yield GatewayTestClient(http)


async def leave_claim(
    engine: AsyncEngine,
    event: dict[str, Any],
    *,
    lease_left: timedelta,
    owner: str = "gateway-that-died:4242:0badc0de",
) -> None:
    """The ledger row a gateway leaves when it dies while dispatching `event` (before it
    recorded the event as accepted): `processing`, held by `owner`, its lease ending
    `lease_left` from the database's clock (negative: already expired). Over an accepted row,
    what it leaves when it dies after the dispatch but before recording it."""
    body = json.dumps(event).encode()
    rfp_id = event["data"].get("rfp_id") if event["type"] == "proposal.submitted" else None
    lease_end = func.now() + literal(lease_left, Interval())
    claim = {"status": "processing", "claimed_by": owner, "lease_expires_at": lease_end}
    async with engine.begin() as conn:
        await conn.execute(
            insert(ProcessedEvent)
            .values(
                event_id=event["event_id"],
                type=event["type"],
                payload_sha256=content_digest(body),
                rfp_id=rfp_id,
                **claim,
            )
            .on_conflict_do_update(index_elements=[ProcessedEvent.event_id], set_=claim)
        )


async def ledger(engine: AsyncEngine, event_id: str) -> list[tuple[str, str | None]]:
    """The ledger's (status, workflow id) of an event: [] when nothing is recorded."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(ProcessedEvent.status, ProcessedEvent.workflow_id).where(
                ProcessedEvent.event_id == event_id
            )
        )
        return [(str(status), workflow_id) for status, workflow_id in rows]


class GatewayTestClient:
    """Posts events to the gateway app the way the platform does."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.workflow_ids: set[str] = set()

    async def post_event(
        self, event: dict[str, Any], *, secret: str = TEST_SECRET, signature: str | None = None
    ) -> httpx.Response:
        body = json.dumps(event).encode()
        headers = signed_headers(body, secret)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        response = await self.http.post("/events", content=body, headers=headers)
        if response.status_code == 202:
            self.workflow_ids.add(response.json()["workflow_id"])
        return response


CONTRACTING = Path(sys.executable).parent / "contracting"
PARIS = ZoneInfo("Europe/Paris")


def today() -> date:
    """The business date the workflows use (Europe/Paris)."""
    return datetime.now(PARIS).date()


def past_month(months_ago: int = 1) -> str:
    """A whole month before this one: every day of it is past, whatever the hour or the day
    (the last of a month included) the test runs, so its CRA can be filed and validated on
    dates the test chooses (`cra_instants`)."""
    month = month_of(today())
    for _ in range(months_ago):
        month = month_of(month_bounds(month)[0] - timedelta(days=1))
    return month


def cra_instants(month: str) -> tuple[datetime, datetime]:
    """When the provider submits (10:00 Paris) and the approver validates (17:00) a month's
    CRA: its last business day, as the FAQ asks."""
    due = previous_business_day_on_or_before(month_bounds(month)[1])
    return paris_instant(due, time(10)), paris_instant(due, time(17))


EU_VAT_NUMBERS = {
    "BE": "BE0403019261",
    "DE": "DE136695976",
    "ES": "ESA28015865",
    "FI": "FI20774740",
    "IT": "IT00743110157",
    "NL": "NL004495445B01",
    "PT": "PT501964843",
}
"""A valid VAT number per EU state (python-stdnum checks them), for providers abroad."""


def provider(siren: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A provider as `proposal.submitted` carries it: a French company by default (with its
    registration); abroad, its address there and, in the EU, its VAT number."""
    country = overrides.get("country", "FR")
    data: dict[str, Any] = {
        "siren": siren or new_siren(),
        "name": "Durand Conseil",
        "email": "paul@durand-conseil.example",
        "country": "FR",
        "legal_form": "company",
        "vat_franchise": False,
        "address": PROVIDER_ADDRESS if country == "FR" else foreign_address(country),
    }
    if country == "FR" and overrides.get("legal_form", "company") == "company":
        data["registration"] = PROVIDER_REGISTRATION
    if country in EU_VAT_NUMBERS:
        data["vat_number"] = EU_VAT_NUMBERS[country]
    return copy.deepcopy(data | overrides)  # tests may edit it: never the shared constants


def parse_errors(data: dict[str, Any], event_type: str = "proposal.submitted") -> dict[str, str]:
    """The 422 the gateway's parser answers for `data`: {field path: message}."""
    try:
        parse_event(json.dumps(envelope(event_type, data)).encode())
    except InvalidEvent as refused:
        return {error["loc"]: error["msg"] for error in refused.errors}
    raise AssertionError(f"the {event_type} data was accepted: {data}")


async def post(
    gateway: GatewayTestClient,
    event_type: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    **data: Any,
) -> httpx.Response:
    return await gateway.post_event(envelope(event_type, data, event_id, occurred_at))


async def submit(gateway: GatewayTestClient, **overrides: Any) -> str:
    """A new proposal (its own provider unless given), once recorded; answers its id."""
    overrides.setdefault("provider", provider())
    data = proposal_submitted(**overrides)
    response = await gateway.post_event(envelope("proposal.submitted", data))
    assert response.status_code == 202, response.text
    pid = str(data["proposal_id"])

    async def recorded() -> bool:  # in the database, where rfp.closed finds its proposals
        timeline = (await view(gateway, pid)).state.timeline
        return any(entry.kind == "proposal.submitted" for entry in timeline)

    await eventually(recorded)
    return pid


async def view(gateway: GatewayTestClient, mission_id: str) -> MissionView:
    response = await gateway.http.get(f"/missions/{mission_id}")
    assert response.status_code == 200, response.text
    return MissionView.model_validate(response.json())


async def until_stage(
    gateway: GatewayTestClient, mission_id: str, stage: str, within: float = 10.0
) -> MissionView:
    async def reached() -> bool:
        return (await view(gateway, mission_id)).state.stage == stage

    await eventually(reached, within=within)
    return await view(gateway, mission_id)


async def apply(
    gateway: GatewayTestClient,
    event_type: str,
    occurred_at: datetime | None = None,
    **data: Any,
) -> None:
    response = await post(gateway, event_type, occurred_at=occurred_at, **data)
    assert response.status_code == 202, f"{event_type}: {response.text}"


async def retain(gateway: GatewayTestClient, pid: str) -> None:
    await apply(gateway, "proposal.read", proposal_id=pid)
    await apply(gateway, "proposal.rated", proposal_id=pid, interesting=True)
    await apply(gateway, "proposal.retained", proposal_id=pid)


async def upload(
    gateway: GatewayTestClient, siren: str, kind: str, issued_days_ago: int = 3
) -> str:
    document_id = f"DOC-{uuid.uuid4().hex[:12]}"
    await apply(
        gateway,
        "document.uploaded",
        document_id=document_id,
        provider_siren=siren,
        kind=kind,
        issued_on=(today() - timedelta(days=issued_days_ago)).isoformat(),
        file_ref=f"s3://docs/{document_id}.pdf",
    )
    return document_id


async def month_open(
    gateway: GatewayTestClient,
    offer: str,
    number: int,
    signed_on: date | None = None,
    months_ago: int = 1,
    siren: str | None = None,
    proposal_id: str | None = None,
    within: float = 10.0,
    **provider_fields: Any,
) -> tuple[str, str]:
    """A mission that started on the 1st of `past_month(months_ago)` with `offer` (purchase
    order `PO-<number>`, contract `CP-<number>`), its provider compliant, once the CRA cycle
    of that month is open: (mission id, month). File and validate it at `cra_instants`.
    `proposal_id` (the mission id) is a fresh short one unless given; `provider_fields`
    override the provider's (`country="PT"`…); `within` bounds each wait for the worker."""
    siren = siren or new_siren()
    month = past_month(months_ago)
    start = month_bounds(month)[0]
    pid = await submit(
        gateway,
        proposal_id=proposal_id,
        provider=provider(siren, **provider_fields),
        start_date=start.isoformat(),
        end_date=(start + timedelta(days=150)).isoformat(),
    )
    await retain(gateway, pid)
    for kind in ("urssaf_vigilance", "kbis", "sworn_statement", "foreign_workers_list"):
        document_id = await upload(gateway, siren, kind, issued_days_ago=1)
        await apply(gateway, "document.reviewed", document_id=document_id, accepted=True)
    await apply(gateway, "purchase_order.confirmed", proposal_id=pid, po_number=f"PO-{number}")
    await apply(
        gateway,
        "contract.signed",
        proposal_id=pid,
        signed_on=(signed_on or start).isoformat(),
        payment_offer=offer,
        special_conditions_ref=f"CP-{number}",
    )
    await until_stage(gateway, pid, "in_progress", within)

    async def cra_open() -> bool:
        return month in (await view(gateway, pid)).state.cra_months

    await eventually(cra_open, within=within)
    return pid, month


async def file_cra(
    gateway: GatewayTestClient, pid: str, month: str, at: datetime, days: str = "1"
) -> None:
    """The provider files the month's CRA, at `at`."""
    await apply(gateway, "cra.submitted", occurred_at=at, mission_id=pid, month=month, days=days)


async def validate_cra(gateway: GatewayTestClient, pid: str, month: str, at: datetime) -> None:
    """The approver APR-1 validates the month's CRA, at `at`."""
    await apply(
        gateway, "cra.validated", occurred_at=at, mission_id=pid, month=month, approver_id=APPROVER
    )


async def file_and_validate(
    gateway: GatewayTestClient, pid: str, month: str, days: str = "1"
) -> date:
    """The provider files the month's CRA, the approver validates it, at `cra_instants`:
    the validation day (the invoice's date and the payout's starting point)."""
    submitted_at, validated_at = cra_instants(month)
    await file_cra(gateway, pid, month, submitted_at, days)
    await validate_cra(gateway, pid, month, validated_at)
    return paris_date(validated_at)


async def refused(response: httpx.Response, *fragments: str) -> str:
    assert response.status_code == 409, response.text
    detail = str(response.json()["detail"])
    for fragment in fragments:
        assert fragment in detail, detail
    return detail


async def validated_month(
    gateway: GatewayTestClient,
    offer: str = "basic",
    proposal_id: str | None = None,
    **provider_fields: Any,
) -> tuple[str, str]:
    """A mission in progress whose month's CRA is validated and its files issued (rendered
    just after the validation, by their own activity): (mission id, month)."""
    pid, month = await month_open(gateway, offer, 9, proposal_id=proposal_id, **provider_fields)
    await file_and_validate(gateway, pid, month)

    async def validated() -> bool:
        return (await view(gateway, pid)).state.validated_months == [month]

    async def issued() -> bool:
        response = await gateway.http.get(f"/missions/{pid}/documents")
        return response.status_code == 200 and bool(response.json()["documents"])

    await eventually(validated)
    # The first rendering in a worker process parses the font and the Factur-X schemas:
    # seconds on a loaded 2-core machine (it used to sit inside the validation's 10 s).
    await eventually(issued, within=30)
    return pid, month


async def run_contracting(
    env: WorkflowEnvironment, *args: str, database_url: str | None = None
) -> tuple[int, str, str]:
    """Run the installed `contracting` command against `env`'s server (and the database at
    `database_url`), without blocking the loop the worker runs on: (exit code, stdout,
    stderr)."""
    database = {"CONTRACTING_DATABASE_URL": database_url} if database_url else {}
    process = await asyncio.create_subprocess_exec(
        str(CONTRACTING),
        *args,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
            "CONTRACTING_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            # Not the codec key a dev stack of this checkout left in var/: payloads in clear,
            # like the test workers'.
            "CONTRACTING_VAR_DIR": str(Path(tempfile.gettempdir()) / "contracting-no-var"),
            **database,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
