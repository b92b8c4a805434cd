"""The one configuration object: every setting is a `CONTRACTING_` environment variable.

Defaults point at the embedded dev stack (`contracting dev`), so that nothing needs to be
configured on a developer's machine; production overrides them (see the README).
"""

from __future__ import annotations

import ipaddress
import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from codec.keys import CodecKeyError, Keyring, parse_keys, read_key_file

DEV_GATEWAY_SECRET = "dev-secret"
DEV_CODEC_KEY_FILE = "codec.keys"
"""Under `var_dir`: the codec key `contracting dev` generates on its first start."""
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

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses to start with the development secret, the dev "
        "stack flag, or without a codec key.",
    )

    # Where the embedded stack keeps its data (Temporal's SQLite file, PostgreSQL, mails).
    var_dir: Path = Path("var")

    # PostgreSQL
    database_url: str = "postgresql+psycopg://contracting@127.0.0.1:5433/contracting"
    postgres_port: int = 5433

    # Temporal: a cluster is reached through Temporal's own TEMPORAL_* variables and profiles
    # (activities/temporal_client.py); these two apply when those give no address/namespace,
    # and are where `contracting dev` runs its server.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    temporal_retention_days: int = Field(
        default=30,
        ge=1,
        le=90,
        description="how long the dev stack's namespace keeps closed workflows (`contracting "
        "dev` sets it); support reads the ledger, so nothing is lost past it",
    )
    task_queue: str = "contracting"
    render_task_queue: str | None = Field(
        default=None,
        description=(
            "task queue of the billing documents' rendering (CPU-bound); empty: the main "
            "task queue. Render-only workers (`CONTRACTING_WORKER_ROLE=render`) poll it"
        ),
    )
    worker_role: Literal["all", "main", "render"] = Field(
        default="all",
        description=(
            "all: every workflow and activity (and the rendering, on the render queue too); "
            "main: the same without the rendering; render: only the rendering"
        ),
    )
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
    read_tokens: SecretStr | None = Field(
        default=None,
        description="Bearer tokens of the gateway's read routes, `role:token,...` with the "
        "roles `support` and `ops` (starter.gateway.read_access): none, the routes are off.",
    )
    read_explain_per_minute: float = Field(
        default=60.0,
        gt=0,
        description="`GET /missions/{id}/explain` requests per minute and per token, in each "
        "gateway process (a token bucket): past it, 429 with Retry-After.",
    )
    read_explain_burst: int = Field(
        default=20, ge=1, description="explain requests a token may make at once"
    )
    read_explain_max_months: int = Field(
        default=12,
        ge=1,
        le=120,
        description="the most months one explain request may cover (`?from=&to=`, ops only)",
    )
    dev_stack: bool = Field(
        default=False,
        description="Set by `contracting dev`: allows the well-known development secret "
        "while the gateway is bound to a loopback address.",
    )

    # Payload encryption (codec/)
    codec_keys: SecretStr | None = Field(
        default=None,
        description="keyid:base64-32-bytes,... : the first encrypts, all decrypt.",
    )
    codec_keys_file: Path | None = Field(
        default=None, description="A file holding the keys, in the same format."
    )
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = 8081
    codec_server_token: SecretStr | None = Field(
        default=None,
        description="The token `contracting codec-server` requires (Authorization: Bearer).",
    )
    codec_server_cors_origins: str = Field(
        default="http://127.0.0.1:8233,http://localhost:8233",
        description="Origins (the Temporal UI's) allowed to call the codec server, "
        "comma-separated.",
    )

    # Observability (README, "Production / Observability")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json` in production: one JSON object per line, with mission_id and "
        "event_id when known; `text` for a terminal",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the internal listeners bind to (the worker's metrics and "
        "health ports, the gateway's metrics port): 0.0.0.0 in a container, never published",
    )
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="The worker's Prometheus endpoint (the Temporal SDK's metrics); 0 disables",
    )
    worker_health_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="The worker's /health and /ready; 0 disables",
    )
    gateway_metrics_port: int = Field(
        default=9466,
        ge=0,
        le=65535,
        description="The gateway's internal listener: /metrics (gateway, business and its "
        "Temporal client's SDK metrics), /health, /ready; 0 disables",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (e.g. http://otel-collector:4318/v1/traces): "
        "set, the gateway and the worker trace events through the workflows and activities",
    )
    business_metrics_ttl_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long the business metrics read from the database are reused",
    )
    readiness_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long a readiness probe waits for Temporal and for the database",
    )

    # Contractual constants that are product decisions (domain-rules.md).
    late_payment_rate: Decimal = Decimal("0.10")
    recovery_indemnity: Decimal = Decimal("40.00")
    kbis_max_age_days: int = 90

    @property
    def rendering_task_queue(self) -> str:
        """Where the billing documents are rendered: `render_task_queue`, else the main one."""
        return self.render_task_queue or self.task_queue

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

    @model_validator(mode="after")
    def _codec_keys_usable(self) -> Settings:
        """Key material that cannot be used stops the process at start, not at its first
        payload."""
        try:
            self.codec_keyring()
        except CodecKeyError as error:
            raise ValueError(str(error)) from None
        return self

    @model_validator(mode="after")
    def _production_is_locked_down(self) -> Settings:
        """Production never runs with what only a developer's machine may use."""
        if self.environment != "production":
            return self
        problems = []
        if self.dev_stack:
            problems.append("CONTRACTING_DEV_STACK is set: unset it (it is for `contracting dev`)")
        secret = self.gateway_secret.get_secret_value() if self.gateway_secret else ""
        if secret.strip() == DEV_GATEWAY_SECRET:
            problems.append(
                "CONTRACTING_GATEWAY_SECRET is the development secret: set it to the secret "
                "the platform signs events with"
            )
        extra = self.gateway_extra_secrets.get_secret_value() if self.gateway_extra_secrets else ""
        if DEV_GATEWAY_SECRET in (s.strip() for s in extra.split(",")):
            problems.append(
                "CONTRACTING_GATEWAY_EXTRA_SECRETS holds the development secret: remove it"
            )
        if self.codec_keys is None and self.codec_keys_file is None:
            problems.append(
                "no codec key: set CONTRACTING_CODEC_KEYS (keyid:base64-32-bytes, generate one "
                "with `contracting codec-key`) or CONTRACTING_CODEC_KEYS_FILE"
            )
        if problems:
            raise ValueError(
                "CONTRACTING_ENVIRONMENT=production refuses to start: " + "; ".join(problems)
            )
        return self

    def codec_keyring(self) -> Keyring | None:
        """The codec keys: CONTRACTING_CODEC_KEYS, else CONTRACTING_CODEC_KEYS_FILE, else in
        development the key `contracting dev` generated under var/ (so that `contracting
        mission show` beside a dev stack reads its histories); None: payloads in clear."""
        if self.codec_keys is not None and self.codec_keys_file is not None:
            raise CodecKeyError(
                "both CONTRACTING_CODEC_KEYS and CONTRACTING_CODEC_KEYS_FILE are set: keep one"
            )
        if self.codec_keys is not None:
            return parse_keys(self.codec_keys.get_secret_value(), "CONTRACTING_CODEC_KEYS")
        if self.codec_keys_file is not None:
            return read_key_file(self.codec_keys_file, "CONTRACTING_CODEC_KEYS_FILE")
        dev_file = self.var_dir / DEV_CODEC_KEY_FILE
        if self.environment == "development" and dev_file.is_file():
            return read_key_file(dev_file, "the dev stack's codec key file")
        return None

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


def startup_settings() -> Settings:
    """`get_settings()` for an entry point: a setting that stops the process (a production
    refusal, bad key material) is one `error: …` line on stderr and exit status 2, not a
    traceback."""
    try:
        return get_settings()
    except ValidationError as error:
        reasons = [str(e["msg"]).removeprefix("Value error, ") for e in error.errors()]
        print(f"error: {'; '.join(reasons)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
