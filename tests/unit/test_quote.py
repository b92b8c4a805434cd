"""`contracting quote`: one JSON object on success, one stderr line and status 2 on bad input."""

import json

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


def test_flash_quote_prints_one_json_object():
    result = run(*FLASH, "--expenses", "120.40", "--contract-signed-on", "2025-06-01")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == {
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
    result = run(*FLASH)
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["expenses"] == "0.00"
    assert body["payout_amount"] == "11423.75"


def test_back_to_back_has_a_null_date():
    result = run(
        "quote", "--tjm", "500", "--days", "10", "--offer", "back-to-back",
        "--validated-on", "2026-07-10", "--country", "de",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["offer"] == "back_to_back"
    assert body["payout_date"] is None
    assert body["fee"] == "0.00"


def test_basic_with_a_later_invoice_date():
    result = run(
        "quote", "--tjm", "500", "--days", "20", "--offer", "basic",
        "--validated-on", "2026-01-06", "--invoice-date", "2026-01-08",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["payout_date"] == "2026-03-09"


def test_immediate_on_a_saturday_pays_monday():
    result = run(
        "quote", "--tjm", "500", "--days", "1", "--offer", "immediate",
        "--validated-on", "2026-07-11", "--contract-signed-on", "2024-01-01",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["payout_date"] == "2026-07-13"
    assert body["fee"] == "20.00"


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
    result = run(*FLASH, *extra)  # later options override the defaults of FLASH
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


def test_missing_option_is_one_line_too():
    result = run("quote", "--tjm", "650", "--offer", "flash", "--validated-on", "2026-07-10")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "error: missing --days (for example --days 18.5)\n"
