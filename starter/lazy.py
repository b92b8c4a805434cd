"""Commands whose modules are imported only when the command runs.

Every `contracting …` is a new process: importing the dev stack, the demo and the simulator
(Temporal's client, httpx, the domain) for `contracting --help` or `contracting payouts due`
cost about a second of CPU. A lazy command is listed by its name and short help; its module
is imported when it is the command invoked (or completed), never for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass
class LazyCommand:
    """A command known by its short help until it runs; `load` returns its function (what
    `Typer.command` would decorate), importing its module then."""

    short_help: str
    load: Callable[[], Callable[..., Any]]
    _command: Any = field(default=None, repr=False)

    def command(self, name: str) -> Any:
        """The real (Click) command, built once."""
        if self._command is None:
            single = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
            single.command(name)(self.load())
            self._command = typer.main.get_command(single)
        return self._command


def lazy_group(commands: dict[str, LazyCommand]) -> type[TyperGroup]:
    """A Typer group class that lists `commands` first, by their short help, and builds the
    one invoked: give it to `typer.Typer(cls=…)`."""

    class LazyGroup(TyperGroup):
        def list_commands(self, ctx: Any) -> list[str]:
            return [*commands, *super().list_commands(ctx)]

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            lazy = commands.get(cmd_name)
            if lazy is None:
                return super().get_command(ctx, cmd_name)
            # What help listings show: the name and short help, no module imported.
            return TyperCommand(cmd_name, help=lazy.short_help, short_help=lazy.short_help)

        def resolve_command(self, ctx: Any, args: list[str]) -> Any:
            name, command, rest = super().resolve_command(ctx, args)
            if name in commands:
                command = commands[name].command(name)
            return name, command, rest

    return LazyGroup
