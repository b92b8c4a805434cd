"""`contracting demo`: drive demo missions through the gateway with signed platform events.

Ids are derived from the run date so a second run on another day adds missions instead of
colliding, and a second run on the same day shows the gateway's idempotency (duplicates).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer

from settings import get_settings
from starter.client import GatewayClient


@dataclass(frozen=True)
class DemoProvider:
    siren: str
    name: str
    email: str
    country: str
    legal_form: str
    vat_franchise: bool


CLIENT: dict[str, Any] = {
    "id": "CLI-ACME",
    "name": "Acme Industries",
    "siren": "325437259",
    "approvers": [{"id": "APR-ACME-1", "email": "claire.martin@acme.example"}],
}

PROVIDERS = (
    DemoProvider(
        "200780963", "Durand Conseil", "paul@durand-conseil.example", "FR", "company", False
    ),
    DemoProvider(
        "518554019", "Léa Petit EI", "lea.petit@example.fr", "FR", "auto_entrepreneur", True
    ),
    DemoProvider(
        "847144854", "Nordic Data Oy", "billing@nordicdata.example", "FI", "company", False
    ),
)


def _first_of_next_month(today: date) -> date:
    return (today.replace(day=28) + timedelta(days=4)).replace(day=1)


def proposal_events(today: date) -> list[dict[str, Any]]:
    """One proposal per demo provider, on two RFPs of the demo client."""
    stamp = today.strftime("%Y%m%d")
    start = _first_of_next_month(today)
    events = []
    for index, (provider, tjm) in enumerate(
        zip(PROVIDERS, ("650.00", "480.00", "720.00"), strict=True)
    ):
        rfp = f"RFP-{stamp}-{1 + index // 2}"
        proposal_id = f"PROP-{stamp}-{index + 1}"
        events.append(
            {
                "event_id": f"evt-demo-{proposal_id}-submitted",
                "type": "proposal.submitted",
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": {
                    "proposal_id": proposal_id,
                    "rfp_id": rfp,
                    "client": CLIENT,
                    "provider": {
                        "siren": provider.siren,
                        "name": provider.name,
                        "email": provider.email,
                        "country": provider.country,
                        "legal_form": provider.legal_form,
                        "vat_franchise": provider.vat_franchise,
                    },
                    "tjm": tjm,
                    "start_date": start.isoformat(),
                    "end_date": (start + timedelta(days=180)).isoformat(),
                },
            }
        )
    return events


async def run_demo(
    base_url: str, secret: str, today: date
) -> list[tuple[str, int, dict[str, Any]]]:
    """Post the demo events, then one of them again to show the duplicate answer."""
    results = []
    events = proposal_events(today)
    async with GatewayClient(base_url, secret) as gateway:
        for event in [*events, events[0]]:
            response = await gateway.send(event)
            results.append((event["type"], response.status_code, response.body))
    return results


def demo_command(
    gateway_url: Annotated[
        str | None, typer.Option(help="Gateway URL (default: CONTRACTING_GATEWAY_URL).")
    ] = None,
) -> None:
    """Submit the demo proposals through the gateway, signed like the platform signs them."""
    settings = get_settings()
    url = gateway_url or settings.gateway_url
    results = asyncio.run(run_demo(url, settings.effective_gateway_secret(), date.today()))
    failed = False
    for event_type, status, body in results:
        target = body.get("workflow_id") or body.get("detail", "")
        typer.echo(f"{status} {body.get('status', '?'):<10} {event_type:<22} {target}")
        failed = failed or status not in (200, 202)
    if failed:
        raise typer.Exit(1)
    typer.echo(
        "\nDemo missions are at stage 'proposal': see them in the Temporal UI "
        '(query MissionStage="proposal") and the emails under the mail directory.'
    )
