"""`contracting mail resend KEY`: deliver an outbox e-mail again, once.

Through the outbox's own claim (activities/outbox.py, `OutboxActivities.resend`): the same
command run twice at once, or run while the worker retries the row, sends it once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from settings import Settings
    from starter.ops.queries import MailStatus

app = typer.Typer(help="The e-mail outbox (PostgreSQL) and its delivery.", no_args_is_help=True)


@app.command("resend")
def resend_command(
    key: Annotated[
        str,
        typer.Argument(metavar="KEY", help="The outbox key (`outbox_key`), as `explain` shows."),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also send an e-mail already sent, or pending and never failed.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Deliver a refused or failed e-mail again, once.

    For an e-mail the SMTP server refused for good (or whose last attempt failed): it ends
    `sent`, or `refused` again with the server's new answer.

    An e-mail already sent is refused unless --force (a new copy, same Message-ID). Exit
    status 1 when it is not resent (the message says why), 3 for an unknown key, 4 when the
    database or the SMTP server cannot be reached. Reads and writes PostgreSQL
    (CONTRACTING_DATABASE_URL), sends through CONTRACTING_SMTP_*."""
    import asyncio

    from settings import get_settings

    outcome = asyncio.run(_resend(get_settings(), key, force))
    if as_json:
        from starter.ops.output import print_json

        print_json(outcome)
    else:
        typer.echo(outcome.sentence())
    if not outcome.sent:
        raise typer.Exit(1)


async def _resend(settings: Settings, key: str, force: bool) -> MailStatus:
    import aiosmtplib

    from activities.mailer import Mailer
    from activities.outbox import NoSuchEmail, NotResendable, OutboxActivities
    from db.engine import session_factory
    from starter.ops.errors import NotFound, Refused, Unreachable
    from starter.ops.ledger import ledger_engine
    from starter.ops.queries import mail_status

    async with ledger_engine(settings) as engine:
        outbox = OutboxActivities(session_factory(engine), Mailer(settings))
        try:
            resent = await outbox.resend(key, force=force)
        except NoSuchEmail as exc:
            raise NotFound(str(exc)) from exc
        except NotResendable as exc:
            raise Refused(str(exc)) from exc
        except aiosmtplib.SMTPException as exc:
            where = f"{settings.smtp_host}:{settings.smtp_port}"
            if isinstance(exc, ConnectionError | TimeoutError):
                raise Unreachable(
                    f"cannot reach the SMTP server at {where}: {exc}; e-mail {key} was not "
                    "sent (its status is unchanged): run this again once it answers"
                ) from exc
            raise Refused(
                f"the SMTP server at {where} failed for now: {exc}; e-mail {key} was not "
                "sent (its status is unchanged): run this again later"
            ) from exc
        async with engine.connect() as conn:
            return await mail_status(conn, key, sent=resent.sent)
