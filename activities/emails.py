"""French email templates (Jinja2): each template renders a subject line and a text body.

A template's first line is `Subject: …`, then a blank line, then the body; keeping both in
one file keeps a notification's wording in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined

from domain.formatting import money_fr, weekday_fr


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str


PARIS = ZoneInfo("Europe/Paris")


def _french_date(value: date | str) -> str:
    """A date (or its ISO text, as workflow contexts carry it) as `31/12/2026`."""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


def _french_datetime(value: datetime | str) -> str:
    """An instant as Paris wall-clock time: `jeudi 03/12/2026 à 14h30`."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = instant.astimezone(PARIS)
    return f"{weekday_fr(local.date())} {local:%d/%m/%Y} à {local:%H}h{local:%M}"


def _euros(value: Decimal | str) -> str:
    """`1234.5` → `1 234,50 €`, the way French readers expect amounts."""
    return money_fr(Decimal(value))


def _period(month: str) -> str:
    """A CRA's month, or a later billing period of a month split by a change of terms:
    "2026-07-p2" → "2026-07 (période 2)"."""
    base, _, part = month.partition("-p")
    return f"{base} (période {part})" if part else month


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("activities", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fr_date"] = _french_date
    env.filters["fr_datetime"] = _french_datetime
    env.filters["euros"] = _euros
    env.filters["period"] = _period
    return env


def render(template: str, **context: Any) -> RenderedEmail:
    """Render `templates/<template>.txt.j2`; a missing variable is an error, never blank text."""
    text = _environment().get_template(f"{template}.txt.j2").render(**context)
    head, _, body = text.partition("\n\n")
    if not head.startswith("Subject: ") or "\n" in head:
        raise ValueError(
            f"template {template!r} must start with one 'Subject: ' line followed by a blank line"
        )
    return RenderedEmail(subject=head.removeprefix("Subject: ").strip(), body=body.strip() + "\n")
