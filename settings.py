"""The one configuration object: every setting is a `CONTRACTING_` environment variable.

Defaults point at the embedded dev stack (`contracting dev`), so that nothing needs to be
configured on a developer's machine; production overrides them (see the README).
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_GATEWAY_SECRET = "dev-secret"
DEFAULT_GATEWAY_RPC_TIMEOUT_SECONDS = 10.0
DEFAULT_GATEWAY_CLAIM_LEASE_SECONDS = 30.0


def is_loopback(host: str) -> bool:
    """Whether a server bound to `host` is reachable from this machine only."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name: it may resolve to any interface
        return False


class Settings(BaseSettings):
    """Configuration of the worker, the gateway, the CLI and the embedded stack."""

    model_config = SettingsConfigDict(
        env_prefix="CONTRACTING_", env_file=".env", extra="ignore", frozen=True
    )

    # Where the embedded stack keeps its data (Temporal's SQLite file, PostgreSQL, mails).
    var_dir: Path = Path("var")

    # PostgreSQL
    database_url: str = "postgresql+psycopg://contracting@127.0.0.1:5433/contracting"
    postgres_port: int = 5433

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None
    temporal_ui_port: int = 8233
    task_queue: str = "contracting"
    worker_activity_slots: int = Field(
        default=20,
        ge=1,
        le=200,
        description=(
            "activities a worker runs at once; its connection pool keeps as many connections "
            "(and 10 more at most), so an activity never waits for one"
        ),
    )
    worker_workflow_task_slots: int = Field(
        default=100,
        ge=2,
        le=1000,
        description="workflow tasks a worker runs at once (the SDK's "
        "max_concurrent_workflow_tasks); beyond the cache size they wait for a cached "
        "workflow to be evicted",
    )
    worker_max_cached_workflows: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="workflows a worker keeps in memory between their tasks (the SDK's "
        "max_cached_workflows, its sticky cache): one that was evicted replays its whole "
        "history on its next task; 0 caches none (every task replays)",
    )
    worker_workflow_task_pollers: int = Field(
        default=5,
        ge=2,
        le=100,
        description="long polls a worker keeps open for workflow tasks (at most, when "
        "autoscaled); 2 at least, a sticky and a normal one",
    )
    worker_activity_task_pollers: int = Field(
        default=5,
        ge=1,
        le=100,
        description="long polls a worker keeps open for activity tasks (at most, when autoscaled)",
    )
    worker_autoscale_pollers: bool = Field(
        default=False,
        description="let the SDK scale the pollers between 1 and their maximum from the "
        "server's answers instead of keeping them all open",
    )

    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: bool = False
    smtp_starttls: bool = False
    mail_sender: str = "LittleBig Connection <no-reply@contracting.localhost>"
    ops_email: str = "ops@contracting.localhost"

    # Gateway
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_url: str = "http://127.0.0.1:8000"
    gateway_secret: SecretStr | None = None
    gateway_extra_secrets: SecretStr | None = Field(
        default=None,
        description="More HMAC secrets that also validate, comma-separated: during a rotation "
        "the old and the new secret are both accepted.",
    )
    gateway_signature_tolerance_seconds: int = Field(
        default=300,
        gt=0,
        description="How far X-Signature-Timestamp may be from the gateway's clock: a signed "
        "request replayed later than this is refused (401).",
    )
    gateway_allow_untimestamped: bool = Field(
        default=False,
        description="Also accept the legacy signature of the body alone, which never expires: "
        "only while a platform migrates to the timestamped scheme.",
    )
    gateway_max_body_bytes: int = Field(
        default=512 * 1024,
        gt=0,
        description="Largest `POST /events` body (413 above), checked before it is read whole: "
        "the largest legitimate event, an rfp.closed with 1,000 addresses, is about 260 kB.",
    )
    gateway_rpc_timeout_seconds: float = Field(
        default=DEFAULT_GATEWAY_RPC_TIMEOUT_SECONDS,
        gt=0,
        description="How long one Temporal call of the gateway (start a workflow, execute an "
        "update, signal, describe) may take: past it, the event is answered 503 with "
        "Retry-After, to be sent again with the same event_id (a worker that is down would "
        "otherwise hold the request as long as it stays down).",
    )
    gateway_claim_lease_seconds: float = Field(
        default=DEFAULT_GATEWAY_CLAIM_LEASE_SECONDS,
        gt=0,
        description="How long a gateway's claim on an event it is dispatching lasts without "
        "renewal (renewed every third of it while the gateway is alive): a redelivery within "
        "the lease is answered 503 with Retry-After, one after it takes the claim over and "
        "dispatches the event. Longer than the RPC timeout.",
    )
    dev_stack: bool = Field(
        default=False,
        description="Set by `contracting dev`: allows the well-known development secret "
        "while the gateway is bound to a loopback address.",
    )

    # Contractual constants that are product decisions (domain-rules.md).
    late_payment_rate: Decimal = Decimal("0.10")
    recovery_indemnity: Decimal = Decimal("40.00")
    kbis_max_age_days: int = 90

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Settings:
        """A claim must outlive one Temporal call, or a slow but live dispatch would be taken
        over by every redelivery."""
        if self.gateway_claim_lease_seconds <= self.gateway_rpc_timeout_seconds:
            raise ValueError(
                f"CONTRACTING_GATEWAY_CLAIM_LEASE_SECONDS ({self.gateway_claim_lease_seconds:g}) "
                "must be longer than CONTRACTING_GATEWAY_RPC_TIMEOUT_SECONDS "
                f"({self.gateway_rpc_timeout_seconds:g}): raise the lease or lower the timeout"
            )
        return self

    def effective_gateway_secret(self) -> str:
        """The HMAC secret; a dev stack bound to loopback falls back to `dev-secret`, anything
        else must set one: `CONTRACTING_DEV_STACK=1` alone (a stray `.env`) must not open a
        gateway reachable from the network with a secret everyone knows."""
        if self.gateway_secret is not None and self.gateway_secret.get_secret_value():
            return self.gateway_secret.get_secret_value()
        if self.dev_stack and is_loopback(self.gateway_host):
            return DEV_GATEWAY_SECRET
        if self.dev_stack:
            raise RuntimeError(
                f"CONTRACTING_GATEWAY_SECRET is not set and the gateway is bound to "
                f"{self.gateway_host!r}, not a loopback address: the well-known 'dev-secret' is "
                "only accepted on a dev stack reachable from this machine alone. Bind it to "
                "127.0.0.1 (CONTRACTING_GATEWAY_HOST) or set CONTRACTING_GATEWAY_SECRET."
            )
        raise RuntimeError(
            "CONTRACTING_GATEWAY_SECRET is not set: the gateway refuses to accept events "
            "without a shared HMAC secret. Set it to the secret the platform signs with "
            "(or run the embedded stack with `contracting dev`, which uses 'dev-secret')."
        )

    def gateway_secrets(self) -> tuple[str, ...]:
        """Every secret a signature may be made with: the gateway secret (the one this side
        signs with) first, then `gateway_extra_secrets`, so that a rotation has no gap."""
        extra = self.gateway_extra_secrets.get_secret_value() if self.gateway_extra_secrets else ""
        secrets = [self.effective_gateway_secret(), *extra.split(",")]
        return tuple(dict.fromkeys(s.strip() for s in secrets if s.strip()))


@lru_cache
def get_settings() -> Settings:
    """Settings read once per process."""
    return Settings()
