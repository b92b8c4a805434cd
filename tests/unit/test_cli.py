"""The installed `contracting` command: usage errors are one line on stderr, status 2; it
starts without importing the heavy libraries; `--version`."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from starter.cli import LAZY_COMMANDS, run

CONTRACTING = Path(sys.executable).parent / "contracting"
ROOT = Path(__file__).parent.parent.parent

HEAVY = (
    "temporalio",
    "sqlalchemy",
    "pydantic_settings",
    "fastapi",
    "fontTools",
    "httpx",
    "jinja2",
    "asyncio",
    "starter.devstack.devstack",
    "starter.demo.simulate",
)
"""What `contracting --help` and `--version` never import (each command imports its own).
Typer itself imports pydantic to convert some options' values."""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONTRACTING), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quote", "--bogus"], "No such option: --bogus"),
        (
            ["quote", "--tjm", "650", "--days", "1", "--offer", "flash", "--validated-on"],
            "requires",
        ),
        (["event", "send", "/nonexistent.json"], "does not exist"),
        (["mission", "explain", "M-1", "--month", "0000-01"], "a month of 2000 to 2099"),
        (["payouts", "due", "--on", "tomorrow"], "expected a date as YYYY-MM-DD"),
    ],
)
def test_usage_errors_are_one_line_and_status_2(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_quote_through_the_installed_command() -> None:
    result = _run(
        "quote",
        "--tjm",
        "650",
        "--days",
        "18.5",
        "--offer",
        "flash",
        "--validated-on",
        "2026-07-10",
    )
    assert result.returncode == 0, result.stderr
    quote = json.loads(result.stdout)
    assert quote["payout_date"] == "2026-07-16"
    # 18.5 days at 650 € = 12,025 € + 20 % VAT = 14,430 €, minus the Flash fee (5 %: 601.25 €).
    assert quote["amount_incl_vat"] == "14430.00"
    assert quote["fee"] == "601.25"
    assert quote["net_amount"] == "13828.75"


def test_production_refuses_to_start_and_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTRACTING_", "TEMPORAL_"))}
    env.update(CONTRACTING_ENVIRONMENT="production", CONTRACTING_GATEWAY_SECRET="dev-secret")
    result = subprocess.run(
        [str(CONTRACTING), "worker"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: CONTRACTING_ENVIRONMENT=production refuses to start")
    assert "CONTRACTING_GATEWAY_SECRET is the development secret" in line
    assert "no codec key: set CONTRACTING_CODEC_KEYS" in line


def test_register_search_attributes_fails_loudly_when_temporal_is_unreachable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["TEMPORAL_ADDRESS"] = address
    result = subprocess.run(
        [str(CONTRACTING), "register-search-attributes"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach Temporal at {address}")


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"contracting {version('contracting')}\n"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["payouts", "--help"]])
def test_help_and_version_import_no_heavy_library(args: list[str]) -> None:
    """Every `contracting …` is a process of its own: its start is paid by every command."""
    script = (
        "import sys\n"
        "from starter.cli import run\n"
        f"status = run({args!r})\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "[]", result.stderr


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_commands_are_listed_with_their_own_short_help(name: str) -> None:
    """`contracting --help` lists a lazy command by the first sentence of its docstring."""
    lazy = LAZY_COMMANDS[name]
    doc = inspect.getdoc(lazy.load()) or ""
    assert " ".join(doc.split("\n\n")[0].split()) == lazy.short_help
    assert lazy.command(name).name == name


@pytest.mark.parametrize("args", [[], ["payouts"]])
def test_a_group_without_its_command_prints_its_help(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: contracting") and "error:" not in err and "Commands:" in err
