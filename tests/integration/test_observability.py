"""Observability end to end on the session's dev server and database: one event through a
gateway whose Temporal client and worker carry Temporal's tracing interceptor and a runtime
with a Prometheus endpoint; the trace it leaves, the metrics the gateway's internal listener
exposes (its own, the ledger's, the SDK's), and the Grafana dashboard's queries against them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine, session_factory
from db.models import EmailOutbox
from observability.business import LedgerMetrics
from observability.temporal_runtime import free_loopback_address, prometheus_runtime
from observability.tracing import Tracing
from schemas.enums import OutboxStatus
from settings import Settings
from starter.gateway.api import create_app
from starter.gateway.processor import EventProcessor
from starter.gateway.telemetry import GatewayTelemetry
from tests.fixtures.postgres import free_port
from tests.support.factories import envelope, proposal_submitted
from tests.support.failing import FailingWorkflow, failing_activity
from tests.support.gateway import GatewayTestClient, gateway_of, provider
from tests.support.waits import eventually
from tests.support.workers import sandboxed_worker
from workflows.registry import WORKFLOWS

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "contracting.json"


@dataclass
class ObservedStack:
    gateway: GatewayTestClient
    telemetry: GatewayTelemetry
    spans: InMemorySpanExporter
    metrics_url: str
    client: Client
    task_queue: str


@pytest_asyncio.fixture(scope="module")
async def observed(
    dev_server_env: WorkflowEnvironment, stack_settings: Settings, db_engine: AsyncEngine
) -> AsyncIterator[ObservedStack]:
    """A gateway and a worker on a task queue of their own, sharing a client whose runtime
    serves the SDK's metrics and whose interceptor traces into memory."""
    queue = f"observed-{uuid.uuid4().hex[:8]}"
    settings = stack_settings.model_copy(update={"task_queue": queue})
    spans = InMemorySpanExporter()
    provider_ = TracerProvider()
    provider_.add_span_processor(SimpleSpanProcessor(spans))
    tracing = Tracing(provider_)
    sdk_address = free_loopback_address()
    client = await Client.connect(
        dev_server_env.client.service_client.config.target_host,
        namespace=dev_server_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=prometheus_runtime(sdk_address),
        interceptors=[tracing.interceptor()],
    )
    activities = Activities(
        create_engine(settings.database_url), Mailer(settings), settings=settings, temporal=client
    )
    telemetry = GatewayTelemetry(
        tracer=tracing.tracer, sdk_metrics_url=f"http://{sdk_address}/metrics"
    )
    processor = EventProcessor(client, session_factory(db_engine), queue)
    telemetry.watch_ledger(LedgerMetrics(processor.sessions))
    app = create_app(settings, processor=processor, telemetry=telemetry)
    server = telemetry.internal_server("127.0.0.1", 0)
    worker = sandboxed_worker(
        client,
        task_queue=queue,
        workflows=[*WORKFLOWS, FailingWorkflow],
        activities=[*activities.all(), failing_activity],
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        worker,
        server,
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as http,
    ):
        yield ObservedStack(
            GatewayTestClient(http),
            telemetry,
            spans,
            f"http://127.0.0.1:{server.port}/metrics",
            client,
            queue,
        )
    await activities.close()


@pytest_asyncio.fixture(scope="module")
async def one_event(observed: ObservedStack, db_engine: AsyncEngine) -> str:
    """A proposal submitted through the gateway, recorded by its activity; its mission id."""
    data = proposal_submitted(provider=provider())
    response = await observed.gateway.post_event(envelope("proposal.submitted", data))
    assert response.status_code == 202, response.text
    mission = str(data["proposal_id"])

    async def activity_traced() -> bool:
        return any(s.name.startswith("RunActivity:") for s in observed.spans.get_finished_spans())

    async def mails_sent() -> bool:  # none may land in a later test's sink
        async with db_engine.connect() as conn:
            statuses = (
                (
                    await conn.execute(
                        select(EmailOutbox.status).where(EmailOutbox.mission_id == mission)
                    )
                )
                .scalars()
                .all()
            )
        return bool(statuses) and all(status == OutboxStatus.SENT for status in statuses)

    await eventually(activity_traced, within=15)
    await eventually(mails_sent, within=20)
    return mission


async def test_one_event_is_one_trace_from_the_gateway_to_the_activities(
    observed: ObservedStack, one_event: str
) -> None:
    spans: list[ReadableSpan] = list(observed.spans.get_finished_spans())
    names = {span.name for span in spans}
    request = [s for s in spans if s.name == "POST /events"]
    assert request, f"no span of the gateway's request among {sorted(names)}"
    trace_id = request[0].context.trace_id
    traced = {s.name for s in spans if s.context and s.context.trace_id == trace_id}
    client_calls = {
        n
        for n in traced
        if re.match(
            r"(StartWorkflow|SignalWorkflow|StartWorkflowUpdate|"
            r"StartUpdateWithStartWorkflow|SignalWithStartWorkflow)",
            n,
        )
    }
    assert client_calls, f"no client call in the request's trace: {sorted(traced)}"
    assert any(n.startswith("RunWorkflow:") for n in traced), sorted(traced)
    assert any(n.startswith("RunActivity:") for n in traced), sorted(traced)
    assert request[0].parent is None, "the gateway's request span is the root"


async def test_the_internal_listener_exposes_gateway_business_and_sdk_metrics(
    observed: ObservedStack, one_event: str
) -> None:
    with pytest.raises(WorkflowFailureError):  # the SDK's failure metrics appear
        await observed.client.execute_workflow(
            FailingWorkflow.run, id=f"failing-{uuid.uuid4().hex}", task_queue=observed.task_queue
        )
    async with httpx.AsyncClient() as http:
        scrape = (await http.get(observed.metrics_url)).text
        again = await http.get(observed.metrics_url)
    assert again.status_code == 200
    assert observed.telemetry.ledger is not None
    assert observed.telemetry.ledger.reads == 1, "a second scrape within the ttl reads again"
    assert re.search(
        r'contracting_gateway_events_total\{outcome="accepted",status="202",'
        r'type="proposal.submitted"\} [1-9]',
        scrape,
    ), scrape
    assert "contracting_gateway_event_duration_seconds_bucket" in scrape
    for name in (
        "contracting_payouts_due_today",
        "contracting_payouts_blocked",
        "contracting_transitions_failed",
    ):
        assert re.search(rf"^{name} \d", scrape, re.M), f"{name} missing"
    assert re.search(r'^contracting_missions\{stage="proposal"\} [1-9]', scrape, re.M)
    assert "temporal_workflow_task_execution_latency" in scrape, "no SDK metrics"
    assert "temporal_activity_execution_latency" in scrape, "no SDK activity metrics"

    missing = dashboard_metrics() - exposed_names(scrape)
    assert not missing, f"the dashboard queries metrics no scrape exposes: {sorted(missing)}"


def dashboard_metrics() -> set[str]:
    """Every metric name the dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert exprs, "the dashboard has no query"
    return {
        name
        for expr in exprs
        for name in re.findall(r"\b((?:contracting|temporal)_[a-z0-9_]+)", expr)
    }


def exposed_names(scrape: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in scrape.splitlines() if line[:1] != "#"}


async def test_ready_is_503_naming_the_database_when_it_cannot_be_reached(
    dev_server_env: WorkflowEnvironment, stack_settings: Settings
) -> None:
    closed = free_port()  # nothing listens there
    engine = create_engine(f"postgresql+psycopg://contracting@127.0.0.1:{closed}/contracting")
    processor = EventProcessor(dev_server_env.client, session_factory(engine), "unused")
    try:
        async with gateway_of(processor, stack_settings) as gateway:
            ready = await gateway.http.get("/ready")
            alive = await gateway.http.get("/health")
    finally:
        await engine.dispose()
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["database"]
    assert ready.json()["checks"]["temporal"] == "ok"
    assert alive.status_code == 200, "liveness does not depend on the database"
