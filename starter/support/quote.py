"""`contracting quote`: what a provider will be paid for a CRA, when, and why.

The figures are the payout's own (`domain.quote` feeds `domain.payouts.payout_terms`, the
function the CRA validation calls): excl. VAT, VAT, incl. VAT, fee, net and the date.

Support reads the explanation to the provider. The output is one JSON object on stdout; any
bad or ineligible input exits with status 2 and one line on stderr, so scripts can rely on
both. Options are parsed here rather than by Typer, which would print multi-line boxes.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from domain.errors import DomainError
from domain.quote import compute_quote
from schemas.enums import PaymentOffer

USAGE_ERROR = 2

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")


class _BadInput(Exception):
    """Raised while parsing options; the message is the one stderr line."""


def _required(value: str | None, option: str, example: str) -> str:
    if value is None or not value.strip():
        raise _BadInput(f"missing {option} (for example {option} {example})")
    return value.strip()


def _decimal(value: str, option: str) -> Decimal:
    text = value.strip()
    if not _NUMBER.match(text):
        raise _BadInput(f"{option} must be a number such as 650 or 18.5, got {value!r}")
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise _BadInput(f"{option} must be a number, got {value!r}") from None


def _date(value: str, option: str) -> date:
    text = value.strip()
    try:
        if not _DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise _BadInput(f"{option} must be a date written YYYY-MM-DD, got {value!r}") from None


def _offer(value: str) -> PaymentOffer:
    text = value.strip().lower().replace("-", "_")
    try:
        return PaymentOffer(text)
    except ValueError:
        choices = ", ".join(offer.value for offer in PaymentOffer)
        raise _BadInput(f"--offer must be one of {choices}, got {value!r}") from None


def _fail(message: str) -> typer.Exit:
    typer.echo("error: " + " ".join(message.split()), err=True)
    return typer.Exit(code=USAGE_ERROR)


def quote_command(
    tjm: Annotated[
        str | None,
        typer.Option(
            "--tjm", metavar="AMOUNT", help="Daily rate excl. VAT, e.g. 650.", show_default=False
        ),
    ] = None,
    days: Annotated[
        str | None,
        typer.Option(
            "--days", metavar="DAYS", help="Days of service, in half-day steps.", show_default=False
        ),
    ] = None,
    offer: Annotated[
        str | None,
        typer.Option(
            "--offer",
            metavar="OFFER",
            help="basic, express, flash, back_to_back or immediate.",
            show_default=False,
        ),
    ] = None,
    validated_on: Annotated[
        str | None,
        typer.Option(
            "--validated-on",
            metavar="DATE",
            help="CRA validation date, YYYY-MM-DD.",
            show_default=False,
        ),
    ] = None,
    expenses: Annotated[
        str, typer.Option("--expenses", metavar="AMOUNT", help="Expenses excl. VAT to reimburse.")
    ] = "0.00",
    expenses_vat_rate: Annotated[
        str,
        typer.Option("--expenses-vat-rate", metavar="PERCENT", help="VAT rate of the expenses."),
    ] = "20",
    overtime: Annotated[
        list[str] | None,
        typer.Option(
            "--overtime",
            metavar="AMOUNT",
            help="An overtime or on-call amount excl. VAT (repeatable).",
            show_default=False,
        ),
    ] = None,
    correction: Annotated[
        list[str] | None,
        typer.Option(
            "--correction",
            metavar="AMOUNT",
            help="A correction of an earlier month excl. VAT, may be negative (repeatable).",
            show_default=False,
        ),
    ] = None,
    vat_franchise: Annotated[
        bool,
        typer.Option(
            "--vat-franchise",
            help=(
                "French provider under the VAT franchise (art. 293 B): no VAT, expenses billed "
                "VAT included (default: 20 % VAT in France, reverse charge abroad)."
            ),
        ),
    ] = False,
    contract_signed_on: Annotated[
        str | None,
        typer.Option(
            "--contract-signed-on",
            metavar="DATE",
            help="Contract signature date, YYYY-MM-DD (default: the validation date).",
            show_default=False,
        ),
    ] = None,
    country: Annotated[
        str,
        typer.Option(
            "--country",
            metavar="CC",
            help=(
                "Provider's country, ISO 3166 two letters: sets the offers it may choose and its "
                "VAT (French VAT in FR, reverse charge, no VAT, elsewhere)."
            ),
        ),
    ] = "FR",
    invoice_date: Annotated[
        str | None,
        typer.Option(
            "--invoice-date",
            metavar="DATE",
            help="Invoice date (manual import), YYYY-MM-DD (default: the validation date).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Quote a payout: amount, fee, date and a sentence explaining the date."""
    try:
        quote = compute_quote(
            offer=_offer(_required(offer, "--offer", "flash")),
            tjm=_decimal(_required(tjm, "--tjm", "650"), "--tjm"),
            days=_decimal(_required(days, "--days", "18.5"), "--days"),
            validated_on=_date(
                _required(validated_on, "--validated-on", "2026-07-10"), "--validated-on"
            ),
            expenses=_decimal(expenses, "--expenses"),
            expenses_vat_rate=_decimal(expenses_vat_rate, "--expenses-vat-rate"),
            overtime=[_decimal(amount, "--overtime") for amount in overtime or ()],
            corrections=[_decimal(amount, "--correction") for amount in correction or ()],
            vat_franchise=vat_franchise,
            contract_signed_on=(
                None
                if contract_signed_on is None
                else _date(contract_signed_on, "--contract-signed-on")
            ),
            provider_country=country,
            invoice_date=None if invoice_date is None else _date(invoice_date, "--invoice-date"),
        )
    except (_BadInput, DomainError) as error:
        raise _fail(str(error)) from None
    amounts = quote.amounts
    result = {
        "offer": quote.offer.value,
        "vat_regime": amounts.regime.value,
        "vat_franchise": amounts.vat_franchise,
        "vat_mention": amounts.vat_mention,
        "service_amount": str(amounts.service),
        "overtime": str(amounts.overtime),
        "corrections": str(amounts.corrections),
        "expenses": str(amounts.expenses),
        "amount_excl_vat": str(quote.amount_excl_vat),
        "vat_amount": str(quote.vat_amount),
        "amount_incl_vat": str(quote.amount_incl_vat),
        "fee": str(quote.fee),
        "net_amount": str(quote.net_amount),
        "payout_date": None if quote.payout_date is None else quote.payout_date.isoformat(),
        "explanation": quote.explanation,
    }
    typer.echo(json.dumps(result, ensure_ascii=False))
