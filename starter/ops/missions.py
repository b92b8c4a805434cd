"""`contracting missions list`: the missions of the ledger, filtered, a page at a time."""

from __future__ import annotations

from typing import Annotated

import typer

from schemas.enums import MissionStage, PaymentOffer

app = typer.Typer(help="Missions as the ledger (PostgreSQL) records them.", no_args_is_help=True)

MAX_LIMIT = 1000


@app.command("list")
def list_command(
    stage: Annotated[
        list[MissionStage] | None,
        typer.Option("--stage", help="Only missions at this stage (repeat for several)."),
    ] = None,
    client: Annotated[
        str | None, typer.Option("--client", help="Only this client's missions (client id).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider's missions (SIREN).")
    ] = None,
    offer: Annotated[
        PaymentOffer | None, typer.Option("--offer", help="Only missions on this payment offer.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many missions.")
    ] = 50,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip this many (the next page).")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """Missions, newest first: stage, client, provider, offer, dates.

    Reads PostgreSQL (CONTRACTING_DATABASE_URL). The page says how many match in all; the
    next one is `--offset` plus `--limit`."""
    from settings import get_settings
    from starter.ops.ledger import read_ledger
    from starter.ops.output import print_json, table
    from starter.ops.queries import MissionFilter, list_missions

    wanted = MissionFilter(
        stages=stage or [], client_id=client, provider_siren=provider, offer=offer
    )
    page = read_ledger(
        get_settings(), lambda conn: list_missions(conn, wanted, limit=limit, offset=offset)
    )
    if as_json:
        print_json(page)
        return
    headers = ("mission", "stage", "client", "provider", "offer", "start", "end")
    rows = [
        (
            m.mission_id,
            m.stage.value,
            f"{m.client_name} ({m.client_id})",
            f"{m.provider_name} ({m.provider_siren})",
            m.payment_offer.value if m.payment_offer else None,
            m.start_date,
            m.ended_on or m.end_date,
        )
        for m in page.missions
    ]
    typer.echo(table(headers, rows))
    shown = f"{page.offset + 1}-{page.offset + len(page.missions)}" if page.missions else "none"
    more = (
        f"; next page: --offset {page.offset + page.limit}"
        if page.offset + len(page.missions) < page.total
        else ""
    )
    typer.echo(f"\n{shown} of {page.total} missions{more}")
