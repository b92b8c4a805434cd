"""docker-compose.yml, deploy/ and the Dockerfile stay true to the code and to what a production
stack must not do (no Docker engine here: the files are checked for what would break or expose
a user's `docker compose up`). `docker compose config` runs where the Compose plugin exists; the
Compose Specification's JSON schema, vendored in deploy/compose-spec/, checks the file anyway."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from settings import Settings

ROOT = Path(__file__).parent.parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "contracting.json"

APP_IMAGE = "contracting:latest"
JOBS = {"temporal-schema", "temporal-namespace", "temporal-search-attributes", "migrate"}

# CONTRACTING_ variables agreed between the branches of issue 13 whose settings land with the
# other branches (codec: environment, codec keys and server; ledger: read tokens). At merge,
# each is a field of Settings and this set can go.
AGREED_ELSEWHERE = {
    "CONTRACTING_ENVIRONMENT",
    "CONTRACTING_CODEC_KEYS",
    "CONTRACTING_CODEC_SERVER_HOST",
    "CONTRACTING_CODEC_SERVER_PORT",
    "CONTRACTING_CODEC_SERVER_TOKEN",
    "CONTRACTING_CODEC_SERVER_CORS_ORIGINS",
    "CONTRACTING_READ_TOKENS",
}

# What `docker compose config` needs to interpolate the required variables (`${X:?...}`).
SECRETS = {
    "POSTGRES_PASSWORD": "pg",
    "TEMPORAL_DB_PASSWORD": "temporal",
    "CONTRACTING_DB_PASSWORD": "ledger",
    "CONTRACTING_GATEWAY_SECRET": "secret",
    "CONTRACTING_CODEC_KEYS": "k1:" + "A" * 43 + "=",
    "CONTRACTING_CODEC_SERVER_TOKEN": "token",
    "CONTRACTING_READ_TOKENS": "support:s,ops:o",
    "GRAFANA_ADMIN_PASSWORD": "grafana",
}


@functools.cache
def _compose() -> dict[str, Any]:
    """The parsed file (shared: a test that changes it works on a deep copy)."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _app_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if s.get("image") == APP_IMAGE}


def _long_running_app_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _app_services().items() if name not in JOBS}


def _completed(service: dict[str, Any]) -> set[str]:
    """The services `service` waits to have exited 0."""
    depends = service.get("depends_on") or {}
    return {
        name
        for name, condition in (depends.items() if isinstance(depends, dict) else [])
        if condition.get("condition") == "service_completed_successfully"
    }


def _interpolated_default(value: str) -> str:
    """`${NAME:-default}` → default (the value compose uses when NAME is unset)."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    assert match, f"{value!r} is not ${{NAME:-default}}"
    return match.group(1)


# --- the file is a valid Compose file --------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((ROOT / "deploy" / "compose-spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(_compose())]
    assert not errors, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(errors)


def test_the_schema_check_catches_a_broken_file() -> None:
    """The vendored schema is strict enough to refuse what `docker compose` would refuse."""
    schema = json.loads((ROOT / "deploy" / "compose-spec" / "compose-spec.json").read_text())
    broken = copy.deepcopy(_compose())
    broken["services"]["migrate"]["depends_on"]["postgresql"]["condition"] = "service_done"
    broken["services"]["gateway"]["helthcheck"] = broken["services"]["gateway"].pop("healthcheck")
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    assert sorted(error.json_path for error in errors) == [
        "$.services.gateway",
        "$.services.migrate.depends_on",
    ], [error.message for error in errors]


def _compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return probe.returncode == 0 and "unknown command" not in probe.stderr + probe.stdout


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    if not _compose_plugin():
        pytest.skip("no `docker compose` here (no Docker client or no Compose plugin)")
    env = {**os.environ, **SECRETS}
    result = subprocess.run(
        ["docker", "compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_bind_mount_exists() -> None:
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


# --- what it runs, in what order --------------------------------------------------------------


def test_compose_runs_the_production_stack() -> None:
    services = _services()
    assert {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-search-attributes",
        "migrate",
        "worker",
        "gateway",
        "codec-server",
        "temporal-ui",
        "mailpit",
        "prometheus",
        "grafana",
    } <= set(services)
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert not any("auto-setup" in str(s.get("image")) for s in services.values())
    assert services["worker"]["command"] == ["contracting", "worker"]
    assert services["gateway"]["command"] == ["contracting", "gateway"]
    assert services["migrate"]["command"] == ["contracting", "migrate"]
    assert services["codec-server"]["command"] == ["contracting", "codec-server"]


def test_temporal_starts_on_its_schema_and_its_namespace_before_the_orchestrator() -> None:
    services = _services()
    assert "temporal-schema" in _completed(services["temporal"])
    assert services["temporal-namespace"]["depends_on"]["temporal"] == {
        "condition": "service_healthy"
    }
    assert _completed(services["temporal-search-attributes"]) == {"temporal-namespace"}
    for job in JOBS:
        assert services[job].get("restart") == "no", f"{job} is a job: it must not restart"


def test_every_app_service_waits_for_migrations_and_search_attributes() -> None:
    long_running = _long_running_app_services()
    assert {"worker", "gateway"} <= set(long_running)
    for name, service in long_running.items():
        waits = _completed(service)
        assert {"migrate", "temporal-search-attributes"} <= waits, f"{name} waits only for {waits}"


def test_search_attributes_are_registered_by_the_orchestrator() -> None:
    """One list (schemas/search_attributes.py), registered by the code that uses it, with the
    worker's connection settings; its exit code stops the stack when it cannot."""
    job = _services()["temporal-search-attributes"]
    assert job["image"] == APP_IMAGE
    assert job["command"] == ["contracting", "register-search-attributes"]


def test_no_step_can_fail_silently() -> None:
    scripts = sorted((ROOT / "deploy").rglob("*.sh"))
    assert scripts
    for path in [COMPOSE_FILE, *scripts]:
        text = path.read_text()
        assert not re.search(r"\|\|\s*(true|:)\b", text), f"{path.name} swallows a failure"
    for path in scripts:
        assert re.search(r"^set -eu$", path.read_text(), re.M), f"{path.name} lacks `set -eu`"


def test_the_namespace_is_created_with_an_explicit_retention() -> None:
    services = _services()
    job = services["temporal-namespace"]
    assert job["entrypoint"] == ["/bin/sh", "/scripts/create-namespace.sh"]
    retention = job["environment"]["TEMPORAL_NAMESPACE_RETENTION"]
    assert retention == "${TEMPORAL_NAMESPACE_RETENTION:-30d}"
    assert _interpolated_default(retention) == "30d"
    script = (ROOT / "deploy" / "temporal" / "create-namespace.sh").read_text()
    for verb in ("create", "update"):
        command = re.search(rf"namespace {verb} .*?(?<!\\)\n", script, re.S)
        assert command, f"the script never runs `namespace {verb}`"
        assert '--retention "$TEMPORAL_NAMESPACE_RETENTION"' in command.group(0)
    namespace = job["environment"]["TEMPORAL_NAMESPACE"]
    for name, service in _app_services().items():
        assert service["environment"]["TEMPORAL_NAMESPACE"] == namespace, name
    assert services["temporal-ui"]["environment"]["TEMPORAL_DEFAULT_NAMESPACE"] == namespace


def test_app_services_run_in_production_mode_with_required_secrets() -> None:
    for name, service in _app_services().items():
        env = service["environment"]
        assert env["CONTRACTING_ENVIRONMENT"] == "production", name
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233", name
        for secret in (
            "CONTRACTING_CODEC_KEYS",
            "CONTRACTING_GATEWAY_SECRET",
            "CONTRACTING_READ_TOKENS",
        ):
            assert env[secret].startswith(f"${{{secret}:?"), f"{name}: {secret} must be required"
        assert ":?" in env["CONTRACTING_DATABASE_URL"], f"{name}: a default database password"


def test_every_contracting_variable_in_compose_is_a_setting() -> None:
    names = {
        name
        for service in _app_services().values()
        for name in service.get("environment") or {}
        if name.startswith("CONTRACTING_")
    }
    fields = {f"CONTRACTING_{field.upper()}" for field in Settings.model_fields}
    assert names, "the app services set no CONTRACTING_ variable"
    unknown = names - fields - AGREED_ELSEWHERE
    assert not unknown, f"unknown settings in docker-compose.yml: {unknown}"


# --- what is published ------------------------------------------------------------------------


def _published(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def test_nothing_is_published_but_the_gateway_and_local_uis() -> None:
    services = _services()
    assert _published(services["gateway"]) == ["8000:8000"]
    for name in ("temporal", "postgresql", "prometheus", *JOBS, "worker"):
        assert not _published(services[name]), f"{name} must not publish a port"
    local = {"temporal-ui": "8080", "mailpit": "8025", "grafana": "3000", "codec-server": "8081"}
    for name, service in services.items():
        if name == "gateway":
            continue
        for port in _published(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
            assert port == f"127.0.0.1:{local[name]}:{local[name]}", f"{name}: {port}"
    assert not any("1025" in port for port in _published(services["mailpit"])), "SMTP published"


# --- health and observability -----------------------------------------------------------------


def test_worker_and_gateway_report_readiness() -> None:
    services = _services()
    health_port = services["worker"]["environment"]["CONTRACTING_WORKER_HEALTH_PORT"]
    expected = {"worker": health_port, "gateway": "8000"}
    for name, port in expected.items():
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/ready" in probe, f"{name}: {probe}"


def test_prometheus_scrapes_the_worker_and_the_gateway() -> None:
    services = _services()
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job.get("static_configs", [])
        for target in group["targets"]
    }
    env = services["worker"]["environment"]
    assert env["CONTRACTING_METRICS_HOST"] == "0.0.0.0", "Prometheus could not reach them"
    worker, gateway = env["CONTRACTING_METRICS_PORT"], env["CONTRACTING_GATEWAY_METRICS_PORT"]
    assert {f"worker:{worker}", f"gateway:{gateway}"} <= targets
    # The render workers, however many replicas: found by name on the compose network.
    discovered = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert ("render-worker", int(env["CONTRACTING_METRICS_PORT"])) in discovered


def test_the_documents_render_on_their_own_workers() -> None:
    """Every service sees the same render queue; the worker leaves the rendering to the
    render-worker service, which waits for the stack's jobs like the worker."""
    services = _services()
    queues = {
        name: service["environment"].get("CONTRACTING_RENDER_TASK_QUEUE")
        for name, service in services.items()
        if service.get("image") == "contracting:latest" and "environment" in service
    }
    assert set(queues.values()) == {"contracting-render"}, queues
    assert services["worker"]["environment"]["CONTRACTING_WORKER_ROLE"] == "main"
    render = services["render-worker"]
    assert render["command"] == ["contracting", "worker"]
    assert render["environment"]["CONTRACTING_WORKER_ROLE"] == "render"
    assert render["depends_on"] == services["worker"]["depends_on"]
    assert "ports" not in render


def _grafana_dashboards_directory() -> str:
    """Where docker-compose.yml mounts deploy/grafana/dashboards in Grafana's container,
    checked to be the directory Grafana's dashboard provider reads."""
    mounts = dict(
        volume.split(":")[:2]
        for volume in _services()["grafana"]["volumes"]
        if volume.startswith("./")
    )
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    target: str = mounts["./deploy/grafana/dashboards"]
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/contracting.yml").read_text()
    )
    assert [p["options"]["path"] for p in provider["providers"]] == [target]
    return target


def test_grafana_reads_prometheus_and_the_dashboards_directory() -> None:
    _grafana_dashboards_directory()
    sources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert [s["url"] for s in sources["datasources"]] == ["http://prometheus:9090"]
    assert _services()["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )


def test_grafana_provisions_the_contracting_dashboard() -> None:
    _grafana_dashboards_directory()
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"], "the dashboard has no panel"


# --- the image --------------------------------------------------------------------------------


def _project_modules() -> set[str]:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name.split(".")[0] for name in tool["packages"]} | {
        f"{module}.py" for module in tool["py-modules"]
    }


def test_dockerfile_copies_every_package_of_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE))
    copied |= {
        word for line in re.findall(r"^COPY (.+) \./$", dockerfile, re.M) for word in line.split()
    }
    missing = _project_modules() - copied
    assert not missing, f"Dockerfile does not copy {missing}"


def test_dockerignore_lets_every_package_into_the_build_context() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    needed = _project_modules() | {"pyproject.toml", "uv.lock", "README.md"}
    assert needed <= allowed, f".dockerignore keeps out {needed - allowed}"


def test_the_image_installs_the_lock_without_dev_tools_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    build, runtime = stages
    installs = re.findall(r"uv sync ([^\n]+)", build)
    assert installs and all("--locked" in flags for flags in installs), installs
    assert not any("--extra" in flags or "--all-extras" in flags for flags in installs)
    assert "COPY --from=build /opt/contracting /opt/contracting" in runtime
    assert not re.search(r"\buv\b|pip install|apt-get install", runtime), "tools in the image"
    assert re.search(r"^USER (?!root|0\b)\S+", runtime, re.M), "the image runs as root"


def test_pyproject_lists_every_package_the_image_installs() -> None:
    """The image installs only the packages pyproject names: a new subpackage (say
    `starter/gateway/`) left out would be missing from the image."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    top_level = {name.split(".")[0] for name in listed}
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for name in top_level
        for init in (ROOT / name).rglob("__init__.py")
    }
    assert on_disk == listed, f"pyproject.toml packages differ: {on_disk ^ listed}"
