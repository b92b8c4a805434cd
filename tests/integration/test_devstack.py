"""`contracting dev`: pre-flight checks, the Temporal dev server's search attributes, and one
end-to-end start of the whole stack with the demo."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from starter.devstack.devstack import (
    DevStack,
    PortInUseError,
    StackError,
    check_ports,
    ensure_search_attributes,
    search_attributes,
    stack_ports,
)
from tests.support.devstack import free_port_settings as _settings
from tests.support.devstack import stack_env as _env_for

EXPECTED_SEARCH_ATTRIBUTES = {
    "MissionId": "Keyword",
    "RfpId": "Keyword",
    "ClientId": "Keyword",
    "ProviderId": "Keyword",
    "MissionStage": "Keyword",
    "PaymentOffer": "Keyword",
    "NextPayoutDate": "Datetime",
    "FailedTransitions": "KeywordList",
}


def test_a_taken_port_is_named_with_the_variable_that_moves_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", settings.gateway_port))
        blocker.listen()
        with pytest.raises(PortInUseError) as failure:
            check_ports(stack_ports(settings))
    assert str(failure.value) == (
        f"port {settings.gateway_port} (gateway) is already in use: stop what uses it "
        "or set CONTRACTING_GATEWAY_PORT"
    )


def test_every_port_is_checked(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    needs = {need.service: (need.port, need.env_var) for need in stack_ports(settings)}
    assert needs == {
        "Temporal frontend": (
            int(settings.temporal_address.rsplit(":", 1)[1]),
            "CONTRACTING_TEMPORAL_ADDRESS",
        ),
        "Temporal UI": (settings.temporal_ui_port, "CONTRACTING_TEMPORAL_UI_PORT"),
        "PostgreSQL": (settings.postgres_port, "CONTRACTING_POSTGRES_PORT"),
        "SMTP sink": (settings.smtp_port, "CONTRACTING_SMTP_PORT"),
        "gateway": (settings.gateway_port, "CONTRACTING_GATEWAY_PORT"),
        "codec server": (settings.codec_server_port, "CONTRACTING_CODEC_SERVER_PORT"),
        "worker metrics": (settings.metrics_port, "CONTRACTING_METRICS_PORT"),
        "worker health": (settings.worker_health_port, "CONTRACTING_WORKER_HEALTH_PORT"),
        "gateway metrics": (settings.gateway_metrics_port, "CONTRACTING_GATEWAY_METRICS_PORT"),
    }
    check_ports(stack_ports(settings))  # all free: no error


def test_the_same_port_twice_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var").model_copy(update={"smtp_port": 5433})
    settings = settings.model_copy(update={"postgres_port": 5433})
    with pytest.raises(PortInUseError, match="both PostgreSQL and SMTP sink"):
        check_ports(stack_ports(settings))


def test_refuses_to_start_beside_a_running_stack(tmp_path: Path) -> None:
    stack = DevStack(_settings(tmp_path / "var"), cwd=tmp_path)
    stack.ready_file.parent.mkdir(parents=True)
    stack.ready_file.write_text(json.dumps({"pid": os.getppid()}))
    with pytest.raises(StackError, match="already running"):
        stack.preflight()
    stack.ready_file.write_text(json.dumps({"pid": 2**22 + 12345}))  # a dead pid: stale file
    stack.preflight()


def test_search_attributes_are_the_documented_ones(tmp_path: Path) -> None:
    assert search_attributes() == EXPECTED_SEARCH_ATTRIBUTES
    argv = DevStack(_settings(tmp_path / "var"), cwd=tmp_path).temporal_argv()
    flags = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--search-attribute"]
    assert flags == [f"{name}={kind}" for name, kind in EXPECTED_SEARCH_ATTRIBUTES.items()]
    assert "journal_mode=wal" in argv and "synchronous=normal" in argv


async def _custom_attributes(address: str) -> dict[str, int]:
    client = await Client.connect(address)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    return {name: int(kind) for name, kind in listed.custom_attributes.items()}


def test_temporal_dev_server_starts_with_the_search_attributes(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    stack = DevStack(settings, cwd=tmp_path)
    stack.temporal_db.parent.mkdir(parents=True)
    temporal = stack._spawn(
        "temporal", "Temporal dev server", stack.temporal_argv(), "temporal.log"
    )
    try:
        asyncio.run(stack._wait_for_temporal(temporal))
        registered = asyncio.run(_custom_attributes(settings.temporal_address))
        assert {"MissionId": 2, "NextPayoutDate": 6}.items() <= registered.items()
        assert set(EXPECTED_SEARCH_ATTRIBUTES) <= set(registered)

        # A later version adds an attribute: registered on the existing database too.
        async def add_one() -> None:
            client = await Client.connect(settings.temporal_address)
            wanted = {**search_attributes(), "ContractingTestExtra": "Keyword"}
            await ensure_search_attributes(client, "default", wanted)
            with pytest.raises(StackError, match="registered as Keyword"):
                await ensure_search_attributes(client, "default", {"MissionId": "Datetime"})

        asyncio.run(add_one())
        assert "ContractingTestExtra" in asyncio.run(_custom_attributes(settings.temporal_address))
    finally:
        stack.stop()
    assert temporal.poll() is not None


def test_contracting_dev_runs_the_demo_and_stops_cleanly(os_tmp_path: Path) -> None:
    """The whole stack, end to end: start, demo through the gateway, mails, clean stop."""
    settings = _settings(os_tmp_path / "var")
    env = {**os.environ, **_env_for(settings), "PYTHONPATH": os.getcwd()}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from starter.cli import main; main()",
            "dev",
            "--demo",
            "--exit-after",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Contracting dev stack is ready" in output
    assert f"http://127.0.0.1:{settings.temporal_ui_port}" in output
    assert "dev-secret" in output
    # The demo leaves a payout workflow of every offer (starter/demo/demo.py).
    for offer in ("flash", "basic", "express", "back_to_back", "immediate"):
        line = rf"^payout-PROP-\d{{8}}-\d+-\d{{4}}-\d{{2}} +{offer} "
        assert re.search(line, output, re.MULTILINE), offer
    # Mission 10's client pays in two parts: the first releases nothing, the second the payout.
    assert "partial: the payout still waits" in output
    released = r"^payout-PROP-\d{8}-10-\d{4}-\d{2} +back_to_back +(scheduled|paid) "
    assert re.search(released, output, re.MULTILINE), output
    assert "not issued" not in output  # every provider's documents, abroad too
    # Mission 8 is renewed at a new TJM, paid Express from then on.
    assert re.search(r"renewed \(v2\) \S+ → \S+: TJM 680\.00, offer express", output), output
    assert "renewal.validated" in output
    # Mission 14: its middle month cannot absorb its correction, carried to the next month.
    assert "invoice of 0 €, 1,800 € carried over" in output, output
    assert len(re.findall(r"^payout-PROP-\d{8}-14-\d{4}-\d{2} +basic ", output, re.M)) == 3
    # Mission 15: renewed from the 16th, last month billed in two periods, two payouts.
    assert re.search(r"^payout-PROP-\d{8}-15-\d{4}-\d{2} +express ", output, re.M), output
    assert re.search(r"^payout-PROP-\d{8}-15-\d{4}-\d{2}-p2 +flash ", output, re.M), output
    assert "step(s) failed" not in output
    assert "stopping PostgreSQL" in output
    var_dir = os_tmp_path / "var"
    assert not (var_dir / "ready").exists()
    assert (var_dir / "temporal" / "temporal.db").exists()
    assert (var_dir / "postgres" / "data" / "PG_VERSION").exists()
    assert not (var_dir / "postgres" / "data" / "postmaster.pid").exists()  # fast shutdown
    # The demo ran on encrypted histories, with the key generated on this first start.
    assert (var_dir / "codec.keys").stat().st_mode & 0o777 == 0o600
    assert re.search(rf"Codec server +http://127\.0\.0\.1:{settings.codec_server_port} ", output)
    assert time.monotonic() - started < 120
