"""A real `contracting dev --supervise` stack in a subprocess, and the faults done to it.

Its pieces are real processes: `kill` sends SIGKILL to one (the supervisor restarts it),
`hold`/`release` stop one and bring it back through `<var>/hold/<service>`
(starter/devstack/supervisor.py). Every wait is bounded and says what did not happen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from settings import Settings
from tests.support.devstack import free_port_settings, stack_env
from tests.support.gateway import TEST_SECRET

START_TIMEOUT = 120.0
BACK_TIMEOUT = 60.0


class SupervisedStack:
    """`contracting dev --supervise` under `root/var`, on free ports, secret `TEST_SECRET`,
    `env` added to the stack's environment."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.extra_env = env or {}
        self.settings: Settings = free_port_settings(root / "var")
        self.var_dir = root / "var"
        self.ready_file = self.var_dir / "ready"
        self.output = root / "dev.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.gateway_url = f"http://127.0.0.1:{self.settings.gateway_port}"

    def start(self) -> None:
        env = {
            **os.environ,
            **stack_env(self.settings),
            "CONTRACTING_GATEWAY_SECRET": TEST_SECRET,
            "PYTHONPATH": os.getcwd(),
            **self.extra_env,
        }
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from starter.cli import main; main()",
                    "dev",
                    "--supervise",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._until(lambda: self.ready() is not None, START_TIMEOUT, "the stack to be ready")

    def stop(self) -> None:
        """SIGTERM the supervisor (it stops every service in order), then wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def ready(self) -> dict[str, Any] | None:
        """The ready file (None while the stack starts)."""
        try:
            data = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def pid(self, service: str) -> int | None:
        info = self.ready() or {}
        pid = info.get("services", {}).get(service)
        return pid if isinstance(pid, int) else None

    @property
    def database_url(self) -> str:
        info = self.ready()
        assert info is not None, "the stack is not ready"
        return str(info["database_url"])

    def read_headers(self) -> dict[str, str]:
        """The `Authorization` of the gateway's read routes: the token `contracting dev`
        generated (the ready file's `read_token`)."""
        info = self.ready()
        assert info is not None and info.get("read_token"), f"no read token in {info}"
        return {"Authorization": f"Bearer {info['read_token']}"}

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def kill(self, service: str) -> int:
        """SIGKILL the service's process; once the supervisor restarted it: its new pid."""
        old = self.pid(service)
        assert old is not None, f"{service} is not running: {self.ready()}"
        os.kill(old, signal.SIGKILL)
        self._until(
            lambda: self.pid(service) not in (None, old), BACK_TIMEOUT, f"{service} restarted"
        )
        if service == "gateway":
            self.until_gateway_answers()
        new = self.pid(service)
        assert new is not None
        return new

    def hold(self, service: str) -> None:
        """Stop the service and keep it down (the supervisor sees `<var>/hold/<service>`)."""
        path = self.var_dir / "hold" / service
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self._until(lambda: self.pid(service) is None, BACK_TIMEOUT, f"{service} stopped")

    def release(self, service: str) -> None:
        """Let the supervisor start the service again; return once it runs."""
        (self.var_dir / "hold" / service).unlink(missing_ok=True)
        self._until(lambda: self.pid(service) is not None, BACK_TIMEOUT, f"{service} back")

    def script_mailsink(self, **faults: object) -> None:
        """Script the running mail sink (starter/devstack/mailsink.py): no argument, no fault."""
        path = self.var_dir / "mailsink-faults.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(faults))
        os.replace(temporary, path)

    def until_gateway_answers(self) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.gateway_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._until(healthy, BACK_TIMEOUT, "the gateway to answer /health")

    def _until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"`contracting dev --supervise` exited ({self.process.returncode}) while "
                    f"waiting for {what}:\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {what} within {within:.0f} s; the supervisor said:\n{self.log()[-3000:]}"
                )
            time.sleep(0.1)
