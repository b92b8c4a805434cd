"""Every workflow the worker registers, and the sandbox it runs them in."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.cra import CraWorkflow
from workflows.mission import MissionWorkflow
from workflows.payout import PayoutWorkflow
from workflows.provider import ProviderComplianceWorkflow

WORKFLOWS = (MissionWorkflow, ProviderComplianceWorkflow, PayoutWorkflow, CraWorkflow)

PASSED_THROUGH = (
    "domain",
    "schemas",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "stdnum",
    "opentelemetry",
    "workflows.effects",
    "workflows.options",
    "workflows.timers",
    "workflows.transitions",
    "workflows.validation",
)
"""Imported once per process and shared by every workflow instead of re-imported for each.

The sandbox re-imports a workflow's modules whenever it instantiates one (every new run,
every cache miss, every replay); for our pydantic models that meant building every model of
`schemas/` again each time: about 40 % of a worker's CPU in the workflow tests. `domain/` and
`schemas/` are pure (no I/O, no clock, no randomness; tests/unit/test_domain_sandbox.py runs
the domain under the default restrictions), pydantic and python-stdnum are libraries they use;
the workflow modules themselves stay sandboxed and restricted. OpenTelemetry is passed through,
as Temporal's tracing interceptor (`observability.tracing`) advises: its context and tracer
provider are process-wide state, which a workflow module importing it would otherwise get as a
re-imported copy, apart from the worker's.

The workflows' helpers (`effects`, `options`, `timers`, `transitions`, `validation`) are
passed through too: the sandbox re-executed them for every cached workflow, about 90 KB of
the 320 KB a cached mission cost (bench/worker_memory.py, README "Benchmarks"). They keep no
module state and only call `temporalio.workflow` (deterministic by construction); what they
lose is the sandbox's runtime check of what they call, so they must stay that small: no
clock, no I/O, no randomness (tests/unit/test_sandbox_passthrough.py checks that they define
no workflow and keep no mutable module state)."""

RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
WORKFLOW_RUNNER = SandboxedWorkflowRunner(restrictions=RESTRICTIONS)
