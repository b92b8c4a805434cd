"""The `contracting` command: one entry point for developers, ops and support."""

from __future__ import annotations

import typer

from starter.devstack import dev_command
from starter.quote import quote_command

app = typer.Typer(
    help="Contracting orchestrator: embedded dev stack, worker, gateway, demo and support tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
event_app = typer.Typer(help="Send platform events (same dispatch as POST /events).")
app.add_typer(event_app, name="event")

app.command("dev")(dev_command)
app.command("quote")(quote_command)


def main() -> None:
    app()
