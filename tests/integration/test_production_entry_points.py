"""The production entry points with the codec on (issue 13, "done when"): `contracting worker`,
`contracting gateway` and `contracting codec-server` as subprocesses with
`CONTRACTING_ENVIRONMENT=production`, a codec key and a real secret, on the session's dev
server, PostgreSQL and SMTP sink. One signed event: its workflow's history holds no provider
name or e-mail in its raw bytes, and the codec server (with its token only) decodes them."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from codec.keys import new_key_line
from starter.devstack.mailsink import MailSink
from starter.gateway.signing import signed_headers
from tests.fixtures.postgres import free_port
from tests.support.factories import envelope, proposal_submitted

CONTRACTING = Path(sys.executable).parent / "contracting"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_env(
    dev_server_env: WorkflowEnvironment, migrated_db_url: str, smtp_sink_server: MailSink
) -> dict[str, str]:
    client = dev_server_env.client
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "CONTRACTING_", "PYTHONPATH"))
    }
    return {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "CONTRACTING_ENVIRONMENT": "production",
        "CONTRACTING_CODEC_KEYS": f"{new_key_line('prod2')},{new_key_line('prod1')}",
        "CONTRACTING_CODEC_SERVER_TOKEN": secrets.token_urlsafe(24),
        "CONTRACTING_CODEC_SERVER_PORT": str(free_port()),
        "CONTRACTING_GATEWAY_SECRET": secrets.token_urlsafe(24),
        "CONTRACTING_GATEWAY_PORT": str(free_port()),
        "CONTRACTING_DATABASE_URL": migrated_db_url,
        "CONTRACTING_SMTP_HOST": smtp_sink_server.host,
        "CONTRACTING_SMTP_PORT": str(smtp_sink_server.port),
        "CONTRACTING_TASK_QUEUE": f"production-{uuid.uuid4().hex[:8]}",
        "CONTRACTING_WORKER_ACTIVITY_SLOTS": "4",
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
    }


@pytest.fixture
def entry_points(production_env: dict[str, str], tmp_path: Path) -> Iterator[list[Path]]:
    """The three long-running entry points, started together; their logs' paths."""
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    for command in ("worker", "gateway", "codec-server"):
        log = tmp_path / f"{command}.log"
        logs.append(log)
        with log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [str(CONTRACTING), command],
                    env=production_env,
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        yield logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def _until_answering(url: str, logs: list[Path], within: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                await http.post(url) if url.endswith("decode") else await http.get(url)
                return
            except httpx.TransportError:
                if loop.time() > deadline:
                    tails = "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in logs)
                    raise AssertionError(
                        f"{url} did not answer within {within:.0f} s\n{tails}"
                    ) from None
                await asyncio.sleep(0.1)


async def _history(client: Client, workflow_id: str) -> History:
    answer = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    return answer.history


async def test_production_entry_points_keep_histories_encrypted(
    dev_server_env: WorkflowEnvironment,
    production_env: dict[str, str],
    entry_points: list[Path],
) -> None:
    env = production_env
    registering = await asyncio.create_subprocess_exec(
        str(CONTRACTING),
        "register-search-attributes",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    gateway_url = f"http://127.0.0.1:{env['CONTRACTING_GATEWAY_PORT']}"
    codec_url = f"http://127.0.0.1:{env['CONTRACTING_CODEC_SERVER_PORT']}"
    await asyncio.gather(
        _until_answering(f"{gateway_url}/health", entry_points),
        _until_answering(f"{codec_url}/decode", entry_points),
    )

    marker = uuid.uuid4().hex[:8]
    name, email = f"Jeanne Codec {marker}", f"jeanne.{marker}@codec.example"
    data = proposal_submitted()
    data["provider"].update(name=name, email=email)
    body = json.dumps(envelope("proposal.submitted", data)).encode()
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        headers = {**signed_headers(body, env["CONTRACTING_GATEWAY_SECRET"])}
        answer = await http.post(
            "/events", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert answer.status_code == 202, answer.text
        workflow_id = answer.json()["workflow_id"]

        # The worker read the encrypted input and ran an activity (its result encrypted too).
        client = dev_server_env.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            history = await _history(client, workflow_id)
            kinds = [event.event_type for event in history.events]
            # The proposal is recorded by a local activity: its result is a marker's.
            if EventType.EVENT_TYPE_MARKER_RECORDED in kinds:
                break
            assert loop.time() < deadline, f"no activity completed: {kinds}"
            await asyncio.sleep(0.1)
        raw = history.SerializeToString()
        assert name.encode() not in raw and email.encode() not in raw
        assert b"binary/encrypted" in raw

        started = history.events[0].workflow_execution_started_event_attributes
        request = json_format.MessageToJson(Payloads(payloads=list(started.input.payloads)))
        codec = {"Content-Type": "application/json", "X-Namespace": client.namespace}
        async with httpx.AsyncClient(base_url=codec_url, timeout=10) as codec_http:
            refused = await codec_http.post("/decode", content=request, headers=codec)
            assert refused.status_code == 401
            token = env["CONTRACTING_CODEC_SERVER_TOKEN"]
            decoded = await codec_http.post(
                "/decode", content=request, headers={**codec, "Authorization": f"Bearer {token}"}
            )
        assert decoded.status_code == 200, decoded.text
        payloads = json_format.Parse(decoded.text, Payloads()).payloads
        clear = b"".join(payload.data for payload in payloads)
        assert name.encode() in clear and email.encode() in clear

    await client.get_workflow_handle(workflow_id).terminate("test over")
    output, _ = await registering.communicate()
    assert registering.returncode == 0, output.decode()
    assert b"search attributes already registered" in output
