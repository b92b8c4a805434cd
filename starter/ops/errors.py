"""The exit statuses of the ops commands, one per kind of failure a script can act on.

0 done; 1 refused or failed (the message says why); 2 bad input (Typer's usage errors);
3 not found; 4 cannot reach (the database, the SMTP server). `starter.cli.run` prints the
message as one `error: …` line on stderr and exits with the exception's `exit_code`.
"""

from __future__ import annotations

import typer

REFUSED = 1
USAGE = 2
NOT_FOUND = 3
UNREACHABLE = 4


class Refused(typer.TyperException):
    """The command could not do what was asked; the message says why and what to do."""

    exit_code = REFUSED


class NotFound(typer.TyperException):
    """What the command names does not exist."""

    exit_code = NOT_FOUND


class Unreachable(typer.TyperException):
    """A server the command needs does not answer."""

    exit_code = UNREACHABLE
