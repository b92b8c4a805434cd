"""What production watches: Prometheus metrics, OpenTelemetry traces, JSON logs with the
mission and event they concern, and readiness probes (README, "Production / Observability")."""
