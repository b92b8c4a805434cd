"""The Temporal SDK's own metrics (workflow/activity task latencies, failures, polls, RPC
calls: `temporal_*`), served in Prometheus format by the SDK's runtime.

A runtime is per process and must be the default before the first client connects
(`temporalio.runtime.Runtime.set_default`): `install_prometheus_runtime` is called first thing
by the worker and by the gateway."""

from __future__ import annotations

import socket

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


def prometheus_runtime(bind_address: str) -> Runtime:
    """A runtime whose metrics the SDK serves at http://<bind_address>/metrics, durations in
    seconds (Prometheus' unit)."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)
        )
    )


def install_prometheus_runtime(bind_address: str) -> Runtime:
    """Make a Prometheus runtime the process's default, used by every client connected
    afterwards (and the workers built on them)."""
    runtime = prometheus_runtime(bind_address)
    Runtime.set_default(runtime, error_if_already_set=False)
    return runtime


def free_loopback_address() -> str:
    """127.0.0.1:<a port free right now>, for an SDK endpoint only this process reads."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"
