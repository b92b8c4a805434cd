"""OpenTelemetry tracing from the gateway's request through the workflows to the activities,
with Temporal's `TracingInterceptor` on the gateway's client and on the worker.

Off unless `CONTRACTING_OTLP_ENDPOINT` is set: then no interceptor is installed, no span is
made and the OpenTelemetry SDK is not even imported, so tracing costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from temporalio.client import Client, Interceptor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from temporalio.contrib.opentelemetry import TracingInterceptor

TRACER_NAME = "contracting"


@dataclass(frozen=True)
class Tracing:
    """A tracer and the provider that exports its spans (shut down to flush them)."""

    provider: TracerProvider

    @property
    def tracer(self) -> Tracer:
        return self.provider.get_tracer(TRACER_NAME)

    def interceptor(self) -> TracingInterceptor:
        """Temporal's interceptor on this tracer: a client's calls (StartWorkflow,
        SignalWorkflow, StartWorkflowUpdate...) and a worker's RunWorkflow/RunActivity."""
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return TracingInterceptor(self.tracer)

    def shutdown(self) -> None:
        self.provider.shutdown()


def otlp_tracing(endpoint: str, service: str) -> Tracing:
    """Spans of `service` batched to an OTLP/HTTP collector (`endpoint`, e.g.
    http://otel-collector:4318/v1/traces) off the event loop."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return Tracing(provider)


def tracing_from(endpoint: str | None, service: str) -> Tracing | None:
    """Tracing when an OTLP endpoint is configured, else None (no overhead)."""
    return otlp_tracing(endpoint, service) if endpoint else None


def with_interceptors(client: Client, interceptors: Sequence[Interceptor]) -> Client:
    """The same connection with `interceptors` added (a worker built on the client uses those
    that are worker interceptors too, as TracingInterceptor is)."""
    if not interceptors:
        return client
    config = client.config()
    config["interceptors"] = [*config["interceptors"], *interceptors]
    return Client(**config)
