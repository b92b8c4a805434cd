"""`contracting quote`: one JSON object on success, one stderr line and status 2 on bad input."""

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

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
        "service_amount": "12025.00",
        "fee": "601.25",
        "expenses": "120.40",
        "payout_amount": "11544.15",
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
    assert body["payout_amount"] == "11423.75"


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
