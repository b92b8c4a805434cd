"""`contracting dev` sets its namespace's retention explicitly (issue 13 point 1): the dev
server has no flag for it and keeps closed workflows one day."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from starter.devstack.devstack import ensure_retention


async def _retention(env: WorkflowEnvironment) -> timedelta:
    described = await env.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=env.client.namespace)
    )
    return described.config.workflow_execution_retention_ttl.ToTimedelta()


async def test_the_dev_stack_sets_the_namespace_retention(
    dev_server_env: WorkflowEnvironment,
) -> None:
    before = await _retention(dev_server_env)
    wanted = timedelta(days=30) if before != timedelta(days=30) else timedelta(days=31)
    await ensure_retention(dev_server_env.client, dev_server_env.client.namespace, wanted)
    assert await _retention(dev_server_env) == wanted
    # Again: nothing to change (no update sent), the same retention.
    await ensure_retention(dev_server_env.client, dev_server_env.client.namespace, wanted)
    assert await _retention(dev_server_env) == wanted
