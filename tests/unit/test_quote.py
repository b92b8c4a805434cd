"""`contracting quote`: one JSON object on success, one stderr line and status 2 on bad input."""

import json
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from domain.invoices import Expense, compute_invoice_amounts
from domain.payouts import payout_terms
from domain.vat import vat_regime
from schemas.enums import PaymentOffer
from starter.support.quote import quote_command

app = typer.Typer()
app.command("quote")(quote_command)


@app.callback()
def _root() -> None:
    """Keep `quote` a named subcommand, as in the real CLI."""


runner = CliRunner()

FLASH = [
    "quote",
    "--tjm",
    "650",
    "--days",
    "18.5",
    "--offer",
    "flash",
    "--validated-on",
    "2026-07-10",
]


def run(*args: str):
    return runner.invoke(app, list(args))


def quoted(*args: str) -> dict[str, Any]:
    """The JSON object a successful quote prints, alone on stdout."""
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def refused(*args: str) -> str:
    """The one stderr line of a quote refused with status 2."""
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    error: str = result.stderr
    assert error.startswith("error: ")
    return error


def test_flash_quote_prints_one_json_object():
    body = quoted(*FLASH, "--expenses", "120.40", "--contract-signed-on", "2025-06-01")
    assert body == {
        "offer": "flash",
        "vat_regime": "french_vat",
        "vat_franchise": False,
        "vat_mention": None,
        "service_amount": "12025.00",
        "overtime": "0.00",
        "corrections": "0.00",
        "expenses": "120.40",
        "amount_excl_vat": "12145.40",
        "vat_amount": "2429.08",
        "amount_incl_vat": "14574.48",
        "fee": "601.25",
        "net_amount": "13973.23",
        "payout_date": "2026-07-16",
        "explanation": (
            "Offre Flash : CRA validé le vendredi 10/07/2026, paiement 3 jours ouvrés plus tard, "
            "le jeudi 16/07/2026 (le 14/07 est férié : Fête nationale). "
            "Frais 5 % du TJM par jour : 601,25 €."
        ),
    }


def test_defaults_contract_signed_on_validation_in_france_without_expenses():
    body = quoted(*FLASH)
    assert body["expenses"] == "0.00"
    assert body["vat_amount"] == "2405.00"
    assert body["net_amount"] == "13828.75"  # 14,430.00 incl. VAT − 601.25 (was 11,423.75)


def test_vat_franchise_overtime_and_corrections():
    body = quoted(
        *FLASH, "--vat-franchise", "--overtime", "200", "--overtime", "100.50",
        "--correction", "-325.25",
    )  # fmt: skip
    assert body["vat_franchise"] is True
    assert body["overtime"] == "300.50"
    assert body["corrections"] == "-325.25"
    assert body["amount_excl_vat"] == body["amount_incl_vat"] == "12000.25"
    assert body["vat_amount"] == "0.00"
    assert body["net_amount"] == "11399.00"


OFFERS = {
    PaymentOffer.BASIC: "FR",
    PaymentOffer.EXPRESS: "FR",
    PaymentOffer.FLASH: "FR",
    PaymentOffer.BACK_TO_BACK: "DE",
    PaymentOffer.IMMEDIATE: "DE",
}
FIXED = (PaymentOffer.BASIC, PaymentOffer.EXPRESS, PaymentOffer.FLASH)


@pytest.mark.parametrize("offer", list(PaymentOffer))
@pytest.mark.parametrize("franchise", [False, True])
def test_the_quote_prints_payout_terms_figures(offer, franchise):
    """Same inputs as the CRA validation: the printed figures are payout_terms'."""
    validated = date(2026, 11, 25)
    country = "FR" if franchise else OFFERS[offer]
    body = quoted(
        "quote", "--tjm", "612.50", "--days", "17.5", "--offer", offer.value,
        "--validated-on", validated.isoformat(), "--country", country,
        "--expenses", "84.20", "--overtime", "250", "--correction", "-99.99",
        *(["--vat-franchise"] if franchise else []),
        *([] if offer in FIXED else ["--contract-signed-on", "2024-09-01"]),
    )  # fmt: skip
    amounts = compute_invoice_amounts(
        tjm=D("612.50"),
        days=D("17.5"),
        overtime=[D("250")],
        corrections=[D("-99.99")],
        expenses=[Expense(amount_excl_vat=D("84.20"), vat_rate=D("20"))],
        regime=vat_regime(country, franchise),
    )
    assert body["vat_regime"] == vat_regime(country, franchise).value
    terms = payout_terms(offer, validated, validated, amounts, tjm=D("612.50"), days=D("17.5"))
    assert terms.schedule is not None
    assert body["amount_excl_vat"] == str(terms.amount_excl_vat)
    assert body["vat_amount"] == str(terms.vat_amount)
    assert body["amount_incl_vat"] == str(terms.amount)
    assert body["fee"] == str(terms.fee)
    assert body["net_amount"] == str(terms.net_amount)
    assert body["payout_date"] == (
        None if terms.payout_date is None else terms.payout_date.isoformat()
    )
    assert body["explanation"].startswith(terms.schedule.explanation)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["--tjm", "500", "--days", "10", "--offer", "back-to-back",
             "--validated-on", "2026-07-10", "--country", "de"],
            {"offer": "back_to_back", "payout_date": None, "fee": "0.00"},
            id="back-to-back-has-a-null-date",
        ),
        pytest.param(
            ["--tjm", "500", "--days", "20", "--offer", "basic",
             "--validated-on", "2026-01-06", "--invoice-date", "2026-01-08"],
            {"payout_date": "2026-03-06"},
            id="basic-with-a-later-invoice-date-still-pays-before-day-60",
        ),
        pytest.param(
            ["--tjm", "500", "--days", "20", "--offer", "express",
             "--validated-on", "2026-11-25"],
            {"payout_date": "2026-12-24", "fee": "250.00"},
            id="express-day-30-on-christmas-pays-the-day-before",
        ),
        pytest.param(
            ["--tjm", "500", "--days", "1", "--offer", "immediate",
             "--validated-on", "2026-07-11", "--contract-signed-on", "2024-01-01"],
            {"payout_date": "2026-07-13", "fee": "20.00"},
            id="immediate-on-a-saturday-pays-monday",
        ),
    ],
)  # fmt: skip
def test_each_offer_quotes_its_date_and_fee(args, expected):
    body = quoted("quote", *args)
    assert {key: body[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--contract-signed-on", "2025-04-27"], "signed on 2025-04-27, before 2025-04-28"),
        (["--country", "BE"], "outside France (BE)"),
        (["--days", "18.3"], "half-day steps"),
        (["--tjm", "-650"], "TJM must not be negative"),
        (["--expenses", "-1"], "expenses must not be negative"),
        (["--validated-on", "2026-13-10"], "--validated-on must be a date written YYYY-MM-DD"),
        (["--validated-on", "10/07/2026"], "--validated-on must be a date"),
        (["--invoice-date", "soon"], "--invoice-date must be a date"),
        (["--tjm", "six cents"], "--tjm must be a number"),
        (["--overtime", "-5"], "overtime must not be negative"),
        (["--correction", "ten"], "--correction must be a number"),
        (["--correction", "1.001"], "at most two decimals"),
        (["--days", "nan"], "--days must be a number"),
        (["--offer", "gold"], "--offer must be one of basic, express, flash"),
        (["--country", "France"], "two-letter"),
    ],
)
def test_bad_input_exits_2_with_one_stderr_line(extra, message):
    assert message in refused(*FLASH, *extra)  # later options override those of FLASH


def test_missing_option_is_one_line_too():
    error = refused("quote", "--tjm", "650", "--offer", "flash", "--validated-on", "2026-07-10")
    assert error == "error: missing --days (for example --days 18.5)\n"
