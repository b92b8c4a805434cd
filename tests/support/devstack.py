"""A `contracting dev` stack of a test's own: every port free, the data under a temp dir."""

from __future__ import annotations

from pathlib import Path

from settings import Settings
from tests.fixtures.postgres import free_port


def free_port_settings(var_dir: Path) -> Settings:
    """Settings for a stack under `var_dir` listening on free ports only."""
    return Settings(
        var_dir=var_dir,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_port=free_port(),
        postgres_port=free_port(),
        smtp_port=free_port(),
        gateway_port=free_port(),
        codec_server_port=free_port(),
        metrics_port=free_port(),
        worker_health_port=free_port(),
        gateway_metrics_port=free_port(),
    )


def stack_env(settings: Settings) -> dict[str, str]:
    """The variables that give a `contracting dev` subprocess these settings."""
    return {
        "CONTRACTING_VAR_DIR": str(settings.var_dir),
        "CONTRACTING_TEMPORAL_ADDRESS": settings.temporal_address,
        "CONTRACTING_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
        "CONTRACTING_POSTGRES_PORT": str(settings.postgres_port),
        "CONTRACTING_SMTP_PORT": str(settings.smtp_port),
        "CONTRACTING_GATEWAY_PORT": str(settings.gateway_port),
        "CONTRACTING_CODEC_SERVER_PORT": str(settings.codec_server_port),
        "CONTRACTING_METRICS_PORT": str(settings.metrics_port),
        "CONTRACTING_WORKER_HEALTH_PORT": str(settings.worker_health_port),
        "CONTRACTING_GATEWAY_METRICS_PORT": str(settings.gateway_metrics_port),
    }
