"""An SMTP sink for the embedded stack and the tests: it accepts every message and keeps it.

Each message is written to `<directory>/<UTC timestamp>-<sequence>-<Message-ID>.eml` (sortable,
unique even when the same Message-ID is delivered twice, which is what tests of idempotent
delivery look for), with two headers prepended: `X-Envelope-From` and `X-Envelope-To`. The sink
also keeps the parsed messages in memory for tests, and can answer the next DATA commands with
a temporary failure (`fail_next(2)` → "451 4.3.0 Try again later") to exercise retries.

Run as a process (`contracting dev`), its faults are scripted by a JSON file (`--faults`,
`var/mailsink-faults.json` under the dev stack), read again whenever it changes, so a fault
experiment (tests/faults/) can script the sink of a running stack:

    {"temporary_every": 5,                  # 451 to every 5th message (20 %)
     "reject_recipients": ["a@example.com"], # 550 to RCPT TO of these addresses
     "hang_seconds": 30}                     # wait that long before answering DATA (then 451)

    python -m starter.devstack.mailsink --dir var/mail --port 1025     # what `contracting dev` runs
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from starter.devstack.service import Service

log = logging.getLogger("contracting.mailsink")

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]+")


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the SMTP envelope, the parsed message and where it was stored."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    path: Path
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def message_id(self) -> str | None:
        value = self.message["Message-ID"]
        return None if value is None else str(value).strip()

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def text(self) -> str:
        """The plain-text body (or the HTML one if there is no text part)."""
        body = self.message.get_body(preferencelist=("plain", "html"))
        if body is None:
            return ""
        return str(body.get_content())


def eml_file_name(received_at: datetime, sequence: int, message_id: str | None) -> str:
    """`20260105T093012.123456Z-000042-<sanitized Message-ID>.eml`: sortable and unique."""
    stamp = received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    cleaned = _UNSAFE.sub("_", (message_id or "no-message-id").strip("<> \t")).strip("._")
    return f"{stamp}-{sequence:06d}-{cleaned[:120] or 'no-message-id'}.eml"


@dataclass(frozen=True)
class ScriptedFaults:
    """What the faults file asks of the sink (all off by default)."""

    temporary_every: int = 0
    reject_recipients: frozenset[str] = frozenset()
    hang_seconds: float = 0.0

    @classmethod
    def read(cls, path: Path | None) -> ScriptedFaults:
        """The file's faults; none when there is no file (or it is being rewritten)."""
        if path is None:
            return cls()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        return cls(
            temporary_every=int(data.get("temporary_every", 0)),
            reject_recipients=frozenset(str(a).lower() for a in data.get("reject_recipients", [])),
            hang_seconds=float(data.get("hang_seconds", 0.0)),
        )


class _Handler:
    """aiosmtpd handler: called on the sink's own event loop thread."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self._sink.scripted().reject_recipients:
            log.info("refusing recipient %s (faults file)", address)
            return "550 5.1.1 Recipient refused by the sink's faults file"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        faults = self._sink.scripted()
        if faults.hang_seconds > 0:
            log.info("hanging %.0f s before answering DATA (faults file)", faults.hang_seconds)
            await asyncio.sleep(faults.hang_seconds)  # what a stuck SMTP server does
            return "451 4.4.2 Timed out (faults file)"
        if (
            faults.temporary_every > 0
            and self._sink.next_data_number() % faults.temporary_every == 0
        ):
            return "451 4.3.0 Try again later (faults file)"
        return self._sink._receive(envelope)


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0 (any free port)."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        create = super()._create_server()

        async def bound() -> asyncio.AbstractServer:
            server = cast(asyncio.Server, await create)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bound()


class MailSink(Service):
    """The SMTP sink. `start()` serves in a background thread; `stop()` ends it.

    `port=0` picks a free port (read `sink.port` after `start()`).
    """

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 1025,
        faults_file: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.faults_file = faults_file
        self._data_commands = 0
        self.host = host
        self.port = port
        self._lock = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._sequence = 0
        self._failures: list[tuple[int, str]] = []
        self.failures_served = 0
        """How many DATA commands were answered with a `fail_next` failure."""
        self._controller: _Controller | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence = max(self._sequence, len(list(self.directory.glob("*.eml"))))
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="mailsink.contracting.localhost",
            ready_timeout=10.0,
        )
        controller.start()
        self.port = controller.port
        self._controller = controller
        log.info(
            "mail sink listening on %s:%d, storing into %s", self.host, self.port, self.directory
        )

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # ------------------------------------------------------------------ behaviour for tests

    def fail_next(self, count: int = 1, code: int = 451, message: str | None = None) -> None:
        """Answer the next `count` DATA commands with `code` (a 4xx is a temporary failure)."""
        if not 400 <= code <= 599:
            raise ValueError(f"an SMTP failure code is 4xx or 5xx, not {code}")
        text = message or ("4.3.0 Try again later" if code < 500 else "5.7.1 Rejected by the sink")
        with self._lock:
            self._failures.extend([(code, text)] * count)

    def recover(self) -> None:
        """End an outage made with `fail_next`: the pending failures are dropped."""
        with self._lock:
            self._failures.clear()

    def clear(self, *, delete_files: bool = False) -> None:
        """Forget received messages and pending failures (and delete stored files if asked)."""
        with self._lock:
            self._messages.clear()
            self._failures.clear()
            self.failures_served = 0
            if delete_files:
                for path in self.directory.glob("*.eml"):
                    path.unlink(missing_ok=True)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the messages received since the start (or the last `clear()`)."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least `count` messages were received; TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(self._timeout_message(count, timeout))
            return list(self._messages)

    async def wait_for_async(
        self,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 (same signature as wait_for)
    ) -> list[ReceivedMessage]:
        """`wait_for` without blocking the caller's event loop (a worker may be running on it)."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.messages
            if len(received) >= count:
                return received
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message(count, timeout))
            await asyncio.sleep(0.02)

    def _timeout_message(self, count: int, timeout: float) -> str:
        received = self.messages
        subjects = ", ".join(repr(m.subject) for m in received) or "none"
        return (
            f"expected {count} message(s) within {timeout:g} s, the sink received "
            f"{len(received)}: {subjects}"
        )

    # ------------------------------------------------------------------ SMTP

    def scripted(self) -> ScriptedFaults:
        """The faults file's current faults (read on every command: it is tiny)."""
        return ScriptedFaults.read(self.faults_file)

    def next_data_number(self) -> int:
        """1, 2, 3…: the DATA commands seen, for `temporary_every`."""
        with self._lock:
            self._data_commands += 1
            return self._data_commands

    def _receive(self, envelope: Envelope) -> str:
        with self._lock:
            if self._failures:
                code, text = self._failures.pop(0)
                self.failures_served += 1
                log.info("answering DATA with %d %s (fail_next)", code, text)
                return f"{code} {text}"
            self._sequence += 1
            sequence = self._sequence
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", errors="surrogateescape")
        message = email.message_from_bytes(content, policy=email.policy.default)
        mail_from = str(envelope.mail_from or "")
        rcpt_tos = tuple(str(r) for r in envelope.rcpt_tos)
        received_at = datetime.now(UTC)
        path = self.directory / eml_file_name(received_at, sequence, message["Message-ID"])
        header = f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_bytes(header.encode("utf-8") + content)
            os.replace(temporary, path)  # readers of the directory never see half a file
        except OSError as error:
            log.exception("could not store a message in %s", self.directory)
            return f"451 4.3.0 Could not store the message: {error.strerror}"
        received = ReceivedMessage(mail_from, rcpt_tos, message, path, received_at)
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()
        log.info("stored %s (from %s to %s)", path.name, mail_from, ", ".join(rcpt_tos))
        return "250 OK"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SMTP sink storing every message as .eml")
    parser.add_argument("--dir", type=Path, default=Path("var/mail"), help="where to store")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--faults", type=Path, default=None, help="JSON file scripting faults")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sink = MailSink(args.dir, args.host, args.port, faults_file=args.faults)
    sink.start()
    print(f"mail sink ready on {sink.host}:{sink.port}, storing into {sink.directory}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
