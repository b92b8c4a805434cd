"""The gateway's own metrics, in a registry of its own (one per app: tests build many):

- `contracting_gateway_events_total{type,status,outcome}`: every `POST /events` answered, by
  event type (`unknown` when the body did not say a type of the contract), HTTP status and
  outcome (accepted, duplicate, rejected, in_flight, unavailable);
- `contracting_gateway_event_duration_seconds{outcome}`: how long answering took;
- `contracting_gateway_temporal_rpc_failures_total{reason}`: events answered 503 because
  Temporal did not take them (timeout, rejected, unreachable)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.events import PAYLOADS

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Up to 30 s: an event waits at most the RPC timeout (10 s by default) plus the ledger."""

UNKNOWN_TYPE = "unknown"
TEMPORAL_FAILURE_REASONS = ("timeout", "rejected", "unreachable")
"""`starter.gateway.events.TemporalUnavailable.reason`."""


def event_type_label(event_type: str | None) -> str:
    """A type of the contract, or `unknown`: whatever a sender puts in `type` must not become
    a label value (each would be a new series)."""
    return event_type if event_type in PAYLOADS else UNKNOWN_TYPE


def outcome_of(status_code: int, body_status: str | None) -> str:
    """accepted | duplicate | in_flight | unavailable | rejected."""
    if body_status in ("accepted", "duplicate", "in_flight"):
        return body_status
    return "unavailable" if status_code == 503 else "rejected"


class GatewayMetrics:
    """The counters and histogram of one gateway, in `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "contracting_gateway_events",
            "Events answered by POST /events, by type, HTTP status and outcome",
            ["type", "status", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "contracting_gateway_event_duration_seconds",
            "Time to answer POST /events, by outcome",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.temporal_failures = Counter(
            "contracting_gateway_temporal_rpc_failures",
            "Events answered 503 because Temporal did not take them, by reason",
            ["reason"],
            registry=self.registry,
        )
        for reason in TEMPORAL_FAILURE_REASONS:  # every series exists from the start, at 0
            self.temporal_failures.labels(reason)

    def answered(
        self, event_type: str | None, status_code: int, body_status: str | None, seconds: float
    ) -> None:
        outcome = outcome_of(status_code, body_status)
        self.events.labels(event_type_label(event_type), str(status_code), outcome).inc()
        self.latency.labels(outcome).observe(seconds)
