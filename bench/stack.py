"""The stack a benchmark measures: a `contracting dev` of its own (temp var dir, free ports,
this checkout's code) or one given by address, and what its processes spend (CPU, RSS)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from settings import DEV_CODEC_KEY_FILE
from tests.support.devstack import free_port_settings, stack_env

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180.0


@dataclass
class Endpoints:
    """Where the stack answers, and the pids of its processes (empty when not ours)."""

    temporal_address: str
    namespace: str
    database_url: str
    gateway_url: str
    gateway_secret: str
    pids: dict[str, int] = field(default_factory=dict)
    read_token: str | None = None
    """A bearer token of the gateway's read routes (`CONTRACTING_READ_TOKENS`)."""
    codec_keys_file: Path | None = None
    """The stack's payload codec keys (its histories are encrypted), to read its payloads."""


class DevStack:
    """`contracting dev` (worker, gateway, mail sink, Temporal dev server, PostgreSQL) under a
    temp dir on free ports, with `env` added to its environment; stopped by SIGTERM."""

    SECRET = "bench-secret"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-stack-")
        self.root = Path(self._tmp.name)
        self.settings = free_port_settings(self.root / "var")
        self.extra_env = env or {}
        self.output = self.root / "dev.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Endpoints:
        env = {
            **os.environ,
            **stack_env(self.settings),
            "CONTRACTING_GATEWAY_SECRET": self.SECRET,
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        argv = [sys.executable, "-c", "from starter.cli import main; main()", "dev"]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        ready = self.settings.var_dir / "ready"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            info = _read_json(ready)
            if info is not None:
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.output.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"`contracting dev` did not become ready:\n{log}")
            time.sleep(0.2)
        pids = {k: v for k, v in info.get("services", {}).items() if isinstance(v, int)}
        codec_keys = self.settings.var_dir / DEV_CODEC_KEY_FILE
        return Endpoints(
            temporal_address=str(info["temporal_address"]),
            namespace=str(info["temporal_namespace"]),
            database_url=str(info["database_url"]),
            gateway_url=str(info["gateway_url"]),
            gateway_secret=self.SECRET,
            pids=pids,
            read_token=str(info["read_token"]) if info.get("read_token") else None,
            codec_keys_file=codec_keys if codec_keys.exists() else None,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._tmp.cleanup()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, its live descendants and its reaped children
    (PostgreSQL's backends come and go); 0 when it is gone."""
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
        return float(total)
    except psutil.Error:
        return 0.0


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (0 when it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """Every process's CPU seconds so far, and the benchmark's own (driver, floor worker)."""
    snapshot = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own = psutil.Process().cpu_times()  # not its children: the dev stack is one of them
    snapshot["bench"] = own.user + own.system
    return snapshot


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}
