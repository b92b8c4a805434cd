"""French renderings of dates, money and rates for the sentences read by providers and support.

The platform speaks French: "vendredi 10/07/2026", "12 025,00 €", "2,5 %".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.money import to_money

_WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def weekday_fr(d: date) -> str:
    """French weekday name, lower case ("jeudi")."""
    return _WEEKDAYS_FR[d.weekday()]


def date_fr(d: date) -> str:
    """DD/MM/YYYY, the French numeric date."""
    return d.strftime("%d/%m/%Y")


def day_month_fr(d: date) -> str:
    """DD/MM, for dates whose year is obvious from the sentence."""
    return d.strftime("%d/%m")


def long_date_fr(d: date) -> str:
    """Weekday and date: "jeudi 16/07/2026"."""
    return f"{weekday_fr(d)} {date_fr(d)}"


def money_fr(amount: Decimal) -> str:
    """Euros with two decimals, space as thousands separator, comma as decimal mark."""
    text = f"{to_money(amount):,.2f}"  # "12,025.00"
    return text.replace(",", " ").replace(".", ",") + " €"


def percent_fr(rate: Decimal) -> str:
    """A rate given as a fraction (Decimal("0.025")) as a French percentage ("2,5 %")."""
    percent = (rate * 100).normalize()
    text = f"{percent:f}"
    return text.replace(".", ",") + " %"


def month_year_fr(month: str) -> str:
    """ "2026-07" as "juillet 2026", as invoice lines name a month; a later billing period
    of a split month, "2026-07-p2", as "juillet 2026, période 2"."""
    year, number = month[:7].split("-")
    part = month[9:]
    return f"{_MONTHS_FR[int(number) - 1]} {year}" + (f", période {part}" if part else "")
