"""The `contracting` command: one entry point for developers, ops and support.

Every run is a new process: this module and the command modules it registers import only
Typer and the standard library at load time; each command imports what it uses (Temporal's
client, SQLAlchemy, the domain…) when it runs (`starter/lazy.py`), so `contracting --help`
and `--version` start in a fraction of a second.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, Protocol, TypeVar

import typer

from starter.lazy import LazyCommand, lazy_group
from starter.ops import mail, missions, payouts
from starter.ops.errors import NotFound, Unreachable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from temporalio.client import Client

    from schemas.mission import LiveWorkflow
    from settings import Settings

LIVE_CONNECT_SECONDS = 5.0
"""Longest `mission show/explain` wait for Temporal before answering from the ledger alone."""


def _dev() -> Callable[..., Any]:
    from starter.devstack.devstack import dev_command

    return dev_command


def _quote() -> Callable[..., Any]:
    from starter.support.quote import quote_command

    return quote_command


def _demo() -> Callable[..., Any]:
    from starter.demo.demo import demo_command

    return demo_command


def _simulate() -> Callable[..., Any]:
    from starter.demo.simulate import simulate_command

    @functools.wraps(simulate_command)
    def simulate(*args: Any, **kwargs: Any) -> None:
        global _used_temporal_client
        _used_temporal_client = True  # see `_leave`
        simulate_command(*args, **kwargs)

    return simulate


LAZY_COMMANDS = {
    "dev": LazyCommand(
        "Run the embedded stack: Temporal dev server + UI, PostgreSQL, SMTP sink, worker, gateway.",
        _dev,
    ),
    "quote": LazyCommand(
        "Quote a payout: amount, fee, date and a sentence explaining the date.", _quote
    ),
    "demo": LazyCommand(
        "Walk the demo missions through contracting and billing via the gateway (signed events).",
        _demo,
    ),
    "simulate": LazyCommand(
        "Run one mission of each payment offer for N months on the time-skipping server.",
        _simulate,
    ),
}
"""Commands whose modules are heavy: imported only when the command runs (their short help
must stay the first sentence of their docstring: tests/unit/test_cli.py checks it)."""

app = typer.Typer(
    cls=lazy_group(LAZY_COMMANDS),
    help="Contracting orchestrator: embedded dev stack, worker, gateway, demo and support tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help, as Click prints it: Rich's help formatting costs ~0.1 s at each start.
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)
event_app = typer.Typer(help="Send platform events (same contract as POST /events).")
app.add_typer(event_app, name="event")
mission_app = typer.Typer(
    help="Look at missions: the ledger (PostgreSQL), with the live workflow's state added."
)
app.add_typer(mission_app, name="mission")
app.add_typer(missions.app, name="missions")
app.add_typer(payouts.app, name="payouts")
app.add_typer(mail.app, name="mail")


def get_settings() -> Settings:
    """The settings (pydantic-settings is imported on first use, not at start)."""
    from settings import get_settings as load

    return load()


def startup_settings() -> Settings:
    """The settings of a long-running process: a refused configuration (production without a
    codec key, a dev secret...) is one `error:` line and exit status 2 (imported on first use)."""
    from settings import startup_settings as load

    return load()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"contracting {version('contracting')}")
        except PackageNotFoundError:
            typer.echo("contracting (not installed: no package metadata)")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """The options of `contracting` itself (the app's `help` is what `--help` shows)."""


_used_temporal_client = False
"""Set by the commands that connect to Temporal (see `_leave`)."""


@app.command("worker")
def worker_command() -> None:
    """Run the Temporal worker (all workflows and activities) until Ctrl-C."""
    startup_settings()  # a refused configuration stops here, before the heavy imports
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
    settings = startup_settings()  # a refused configuration stops before the heavy imports
    from starter.gateway.api import create_app

    _serve(lambda: create_app(settings), RuntimeError, settings.gateway_host, settings.gateway_port)


@app.command("codec-server")
def codec_server_command() -> None:
    """Run the codec server (Temporal's remote codec protocol) for the Temporal UI and the
    `temporal` CLI: needs the codec keys and CONTRACTING_CODEC_SERVER_TOKEN."""
    settings = startup_settings()  # a refused configuration stops before the heavy imports
    from codec.server import CodecServerConfigError, create_codec_app

    _serve(
        lambda: create_codec_app(settings),
        CodecServerConfigError,
        settings.codec_server_host,
        settings.codec_server_port,
    )


def _serve(build: Callable[[], Any], refused: type[Exception], host: str, port: int) -> None:
    """Serve the ASGI app `build` makes; a configuration it refuses (`refused`) is one
    `error:` line and exit status 2."""
    import uvicorn

    try:
        api = build()
    except refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(api, host=host, port=port)


@app.command("codec-key")
def codec_key_command(
    key_id: Annotated[
        str | None, typer.Argument(help="The new key's id (default: a random one).")
    ] = None,
) -> None:
    """Print a fresh codec key, `keyid:base64`: put it first in CONTRACTING_CODEC_KEYS (and
    keep the old ones after it until no history needs them)."""
    from codec.keys import CodecKeyError, new_key_line

    try:
        typer.echo(new_key_line(key_id))
    except CodecKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("register-search-attributes")
def register_search_attributes_command() -> None:
    """Register the workflows' custom search attributes in the configured namespace.

    Succeeds when they exist already with the same types; exit status 1 when one exists with
    another type or Temporal cannot be reached, 2 when the configuration is wrong."""
    import asyncio

    from activities.temporal_client import (
        SearchAttributeConflict,
        TemporalConfigError,
        TemporalUnreachable,
        connect_temporal,
        ensure_search_attributes,
        temporal_target,
    )

    global _used_temporal_client
    settings = startup_settings()
    try:
        where = temporal_target(settings).describe()
    except TemporalConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _used_temporal_client = True

    async def register() -> list[str]:
        return await ensure_search_attributes(await connect_temporal(settings))

    try:
        added = asyncio.run(register())
    except (SearchAttributeConflict, TemporalUnreachable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except Exception as exc:  # an RPC refused: a missing namespace, no permission
        typer.echo(f"error: cannot register the search attributes on {where}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if added:
        typer.echo(f"registered {', '.join(added)} on {where}")
    else:
        typer.echo(f"search attributes already registered on {where}")


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
    import asyncio

    from starter.gateway.client import GatewayClient

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


@mission_app.command("show")
def mission_show_command(
    mission_id: Annotated[str, typer.Argument(help="The mission id (its proposal id).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the view as JSON (as GET /missions/{id}).")
    ] = False,
) -> None:
    """One mission for a person: stage, proposal, dates, legal verification, documents.

    Legal verification says what the provider and the client still have to provide; the
    provider's documents come with their review (rejection comments); then the timeline.
    Reads the ledger in PostgreSQL (CONTRACTING_DATABASE_URL), and the workflow's live state
    through Temporal (TEMPORAL_ADDRESS or a profile) while it runs (out of reach or gone: said,
    not an error)."""
    from starter.support.missions import mission_view, render_mission

    view = _read_ledger(lambda sessions, client: mission_view(sessions, client, mission_id))
    typer.echo(view.model_dump_json(indent=2) if as_json else render_mission(view))


@mission_app.command("explain")
def mission_explain_command(
    mission_id: Annotated[str, typer.Argument(help="The mission id (its proposal id).")],
    month: Annotated[
        str | None,
        typer.Option("--month", help="Only this month (YYYY-MM); default: every month so far."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print as JSON (as GET /missions/{id}/explain)."),
    ] = False,
) -> None:
    """Why a CRA is not visible and why a payout has not arrived, month by month.

    French sentences for support, each naming its dates, amounts and invoice number: CRA not
    validated or validated late, invoice not imported, fixed delay running, Flash shifted by a
    weekend or holiday, a Basic / Express date brought earlier by one or by the legal cap,
    client not paid (back-to-back), due date not reached, or paid on D; and the e-mails the
    SMTP server refused for good. Reads the ledger in PostgreSQL (CONTRACTING_DATABASE_URL),
    and the workflow's live state through Temporal (TEMPORAL_ADDRESS or a profile) while it
    runs."""
    import re

    from starter.support.explain import explain_mission, render_explanation

    if month is not None and not re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])", month):
        typer.echo(
            f"error: --month must be YYYY-MM, a month of 2000 to 2099, got {month!r}", err=True
        )
        raise typer.Exit(2)
    months: list[str] | Literal["all"] = [month] if month else "all"
    explanation = _read_ledger(
        lambda sessions, client: explain_mission(sessions, client, mission_id, months)
    )
    typer.echo(
        explanation.model_dump_json(indent=2) if as_json else render_explanation(explanation)
    )


class _HasLive(Protocol):
    live: LiveWorkflow | None


R = TypeVar("R", bound=_HasLive)


def _read_ledger(
    read: Callable[[async_sessionmaker[AsyncSession], Client | None], Awaitable[R]],
) -> R:
    """What `read` answers from the ledger (CONTRACTING_DATABASE_URL, read directly: the CLI
    runs with ops' credentials), with Temporal's client when it can be reached (else the
    answer says the live state is unavailable, and why); an unknown mission or an unreachable
    PostgreSQL is one `error: …` line and exit status 1."""
    import asyncio

    from activities.temporal_client import (
        TemporalConfigError,
        TemporalUnreachable,
        connect_temporal,
    )
    from starter.support.missions import MissionUnavailable, UnknownMission, with_own_ledger

    global _used_temporal_client
    settings = get_settings()
    _used_temporal_client = True

    async def fetch() -> R:
        client: Client | None = None
        unreachable = ""
        try:
            client = await asyncio.wait_for(connect_temporal(settings), LIVE_CONNECT_SECONDS)
        except (TemporalConfigError, TemporalUnreachable, TimeoutError) as exc:
            unreachable = str(exc) or f"no answer from Temporal within {LIVE_CONNECT_SECONDS:g} s"
        answer = await with_own_ledger(
            settings.database_url, lambda sessions: read(sessions, client)
        )
        if client is None and answer.live is not None:
            answer.live.detail = unreachable
        return answer

    try:
        return asyncio.run(fetch())
    except UnknownMission as exc:
        raise NotFound(str(exc)) from exc
    except MissionUnavailable as exc:
        raise Unreachable(str(exc)) from exc


@mission_app.command("documents")
def mission_documents_command(
    mission_id: Annotated[str, typer.Argument(help="The mission id (its proposal id).")],
    save: Annotated[
        Path | None, typer.Option("--save", help="Also write every file into this directory.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print as JSON (as GET /missions/{id}/documents).")
    ] = False,
) -> None:
    """A mission's billing documents as issued: each validated month's BPF and invoice
    (Factur-X). Reads PostgreSQL (CONTRACTING_DATABASE_URL)."""
    import asyncio

    from starter.support.documents import (
        NoSuchMission,
        fetch_documents,
        render_documents,
        save_documents,
    )

    fetch = fetch_documents(get_settings().database_url, mission_id, with_files=save is not None)
    try:
        listing, files = asyncio.run(fetch)
    except NoSuchMission as exc:
        raise NotFound(str(exc)) from exc
    if save is not None:
        save_documents(files, save)
    typer.echo(listing.model_dump_json(indent=2) if as_json else render_documents(listing, save))


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI on `args` (default: the process's) and return the exit status: a usage
    error is one `error: …` line on stderr and status 2, a missing record 3, an unreachable
    database or server 4 (`starter/ops/errors.py`)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(args) if args is not None else None,
            prog_name="contracting",
            standalone_mode=False,
        )
    except typer.TyperException as exc:  # Typer's usage errors and the commands' failures
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group without its command: its help
            typer.echo(exc.format_message(), err=True)
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """The console script: `run`, then leave with its status."""
    _leave(run())


def _leave(code: int) -> NoReturn:
    if _used_temporal_client:
        # A short-lived process that used a Temporal client may abort (SIGABRT, "PyGILState_
        # Release … finalizing") while the interpreter finalizes, as the client's Rust runtime
        # threads outlive it (temporalio/sdk-python#300; about 1 run in 8 here). The command
        # is done and has nothing to clean up: flush and leave without finalizing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
