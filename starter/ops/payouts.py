"""`contracting payouts due` and `payouts blocked`: what is paid on a day, and what cannot
be paid and why, from the ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

app = typer.Typer(help="Payouts as the ledger (PostgreSQL) records them.", no_args_is_help=True)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def _paris_today() -> date:
    from domain.clock import paris_date

    return paris_date(datetime.now().astimezone())


@app.command("due")
def due_command(
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            metavar="YYYY-MM-DD",
            help="The payout date (default: today in Europe/Paris).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Payouts due on a day (their fixed date): amounts, status, totals.

    Every status is listed (scheduled, paid, cancelled, flagged). Reads PostgreSQL
    (CONTRACTING_DATABASE_URL)."""
    day = _day(on) if on is not None else _paris_today()  # bad input fails before imports

    from settings import get_settings
    from starter.ops.ledger import read_ledger
    from starter.ops.output import print_json, table
    from starter.ops.queries import payouts_due

    due = read_ledger(get_settings(), lambda conn: payouts_due(conn, day))
    if as_json:
        print_json(due)
        return
    headers = ("mission", "month", "provider", "offer", "invoice", "net", "status", "paid at")
    rows = [
        (
            p.mission_id,
            p.month,
            f"{p.provider_name} ({p.provider_siren})",
            p.offer.value,
            p.invoice_number,
            p.net_amount,
            p.status.value,
            p.paid_at,
        )
        for p in due.payouts
    ]
    typer.echo(table(headers, rows))
    typer.echo(
        f"\n{due.count} payouts due on {day.isoformat()}: {due.to_pay} still to pay, "
        f"{due.paid} paid (net amounts)"
    )


@app.command("blocked")
def blocked_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """The payouts that cannot be paid now, and why.

    Why: a payout transition refused for good by the database (the workflow stopped), a
    scheduled payout past its date, a back-to-back client not paid, an imported invoice
    blocked or not imported yet, a payout flagged after its invoice was cancelled. Oldest
    first. Reads
    PostgreSQL (CONTRACTING_DATABASE_URL)."""
    from settings import get_settings
    from starter.ops.ledger import read_ledger
    from starter.ops.output import print_json, table
    from starter.ops.queries import blocked_payouts

    today = _paris_today()
    blocked = read_ledger(get_settings(), lambda conn: blocked_payouts(conn, today))
    if as_json:
        print_json(blocked)
        return
    headers = ("mission", "month", "reason", "net", "since", "detail")
    rows = [
        (p.mission_id, p.month, p.reason.value, p.net_amount, p.since, p.detail)
        for p in blocked.payouts
    ]
    typer.echo(table(headers, rows))
    typer.echo(f"\n{blocked.count} payouts blocked")
