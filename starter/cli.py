"""The `contracting` command: one entry point for developers, ops and support."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

# Typer vendors Click; its exceptions are the ones raised for usage errors.
from typer._click.exceptions import ClickException

from settings import get_settings
from starter.demo import demo_command
from starter.devstack import dev_command
from starter.quote import quote_command

app = typer.Typer(
    help="Contracting orchestrator: embedded dev stack, worker, gateway, demo and support tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
event_app = typer.Typer(help="Send platform events (same contract as POST /events).")
app.add_typer(event_app, name="event")

app.command("dev")(dev_command)
app.command("quote")(quote_command)
app.command("demo")(demo_command)


@app.command("worker")
def worker_command() -> None:
    """Run the Temporal worker (all workflows and activities) until Ctrl-C."""
    import worker

    worker.main()


@app.command("migrate")
def migrate_command() -> None:
    """Apply the database migrations (Alembic) to CONTRACTING_DATABASE_URL."""
    from db.migrate import upgrade

    upgrade(get_settings().database_url)
    typer.echo("database schema is up to date")


@app.command("gateway")
def gateway_command() -> None:
    """Run the HTTP event gateway (refuses to start without CONTRACTING_GATEWAY_SECRET)."""
    import uvicorn

    from starter.api import create_app

    settings = get_settings()
    try:
        api = create_app(settings)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(api, host=settings.gateway_host, port=settings.gateway_port)


@event_app.command("send")
def event_send_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON event (envelope).")
    ],
    gateway_url: Annotated[
        str | None, typer.Option(help="Gateway URL (default: CONTRACTING_GATEWAY_URL).")
    ] = None,
) -> None:
    """Sign FILE.json with the gateway secret and post it; prints the gateway's answer."""
    from starter.client import GatewayClient

    settings = get_settings()
    raw = file.read_bytes()

    async def send() -> tuple[int, dict[str, object]]:
        async with GatewayClient(
            gateway_url or settings.gateway_url, settings.effective_gateway_secret()
        ) as gateway:
            response = await gateway.send_raw(raw)
            return response.status_code, response.body

    status, body = asyncio.run(send())
    typer.echo(json.dumps({"http_status": status, **body}, ensure_ascii=False, indent=2))
    if status not in (200, 202):
        raise typer.Exit(1)


def main() -> None:
    """Run the CLI; a usage error is one `error: …` line on stderr and exit status 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(standalone_mode=False)
    except ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
