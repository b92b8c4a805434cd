"""docker-compose.yml's namespace job (deploy/temporal/create-namespace.sh) against a real
Temporal, the session's dev server, with the same `temporal` CLI the admin-tools image ships:
it creates the namespace with the retention asked, updates the retention when it changes, and
fails (exit != 0) when Temporal does not answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from starter.devstack.binaries import temporal_cli

SCRIPT = Path(__file__).parent.parent.parent / "deploy" / "temporal" / "create-namespace.sh"


async def _run_job(
    address: str, namespace: str, retention: str, attempts: int = 30
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{temporal_cli().parent}{os.pathsep}/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_NAMESPACE_RETENTION": retention,
        "TEMPORAL_NAMESPACE_SETTLE_SECONDS": "0",
        # The health check, and the wait for a created namespace to be served (1 s apart).
        "TEMPORAL_WAIT_ATTEMPTS": str(attempts),
        "TEMPORAL_WAIT_SECONDS": "0",
    }
    return await asyncio.to_thread(
        subprocess.run,
        ["/bin/sh", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _retention(env: WorkflowEnvironment, namespace: str) -> timedelta:
    described = await env.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    return described.config.workflow_execution_retention_ttl.ToTimedelta()


async def test_the_namespace_job_sets_and_updates_the_retention(
    dev_server_env: WorkflowEnvironment,
) -> None:
    address = dev_server_env.client.service_client.config.target_host
    namespace = f"compose-{uuid.uuid4().hex[:8]}"

    created = await _run_job(address, namespace, "45d")
    assert created.returncode == 0, created.stderr
    assert f"namespace {namespace} created, retention 45d" in created.stdout
    assert await _retention(dev_server_env, namespace) == timedelta(days=45)

    updated = await _run_job(address, namespace, "31d")
    assert updated.returncode == 0, updated.stderr
    assert await _retention(dev_server_env, namespace) == timedelta(days=31)


async def test_the_namespace_job_fails_when_temporal_does_not_answer() -> None:
    refused = await _run_job("127.0.0.1:1", "contracting", "30d", attempts=2)
    assert refused.returncode == 1
    assert "is not serving after 2 attempts" in refused.stderr


async def test_the_namespace_job_refuses_a_bad_retention(
    dev_server_env: WorkflowEnvironment,
) -> None:
    address = dev_server_env.client.service_client.config.target_host
    result = await _run_job(address, f"compose-{uuid.uuid4().hex[:8]}", "thirty days")
    assert result.returncode != 0
    assert "retention" in result.stderr
