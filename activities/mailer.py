"""SMTP delivery with aiosmtplib: the only place that talks to the mail server."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.utils import format_datetime, make_msgid

import aiosmtplib

from db.keys import fit_key
from schemas.limits import KEY_LENGTH
from settings import Settings

IDLE_CONNECTIONS = 8
"""SMTP connections a worker keeps open between messages (as many messages at once reuse
them; more open new ones, closed after their message)."""
IDLE_REUSE_SECONDS = 20.0
"""An idle connection older than this is closed rather than reused: well inside the idle
timeouts of SMTP servers (RFC 5321 asks them to wait 5 minutes), so that reuse seldom meets
a connection the server already dropped."""

_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # French text stays readable in the raw message (base64 otherwise)


@dataclass(frozen=True)
class OutgoingEmail:
    recipients: list[str]
    subject: str
    body: str
    message_id: str
    created_at: datetime


def message_id_for(outbox_key: str, domain: str = "contracting.localhost") -> str:
    """A Message-ID derived from the outbox key, so a resent mail is recognisably the same."""
    safe = "".join(ch if ch.isalnum() or ch in ".-_" else "." for ch in outbox_key)
    return f"<{fit_key(safe, KEY_LENGTH - len(domain) - 3)}@{domain}>"  # fits message_id


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    @property
    def settings(self) -> Settings:
        return self._settings

    def build(self, email: OutgoingEmail) -> Message:
        """The message: text/plain in UTF-8 (quoted-printable), the subject RFC 2047-encoded.

        Built with the `compat32` `Message`: the same message as `EmailMessage` (whose header
        registry parses every header it is given) in a fifth of the CPU, which counts when a
        month-end sends thousands (bench/month_end.py)."""
        message = Message()
        message["MIME-Version"] = "1.0"
        message.set_payload(email.body, _UTF8)  # text/plain; charset="utf-8", quoted-printable
        message["From"] = self._settings.mail_sender
        message["To"] = ", ".join(email.recipients)
        message["Subject"] = Header(email.subject, _UTF8, header_name="Subject").encode()
        message["Message-ID"] = email.message_id or make_msgid()
        message["Date"] = format_datetime(email.created_at)
        return message

    async def send(self, email: OutgoingEmail) -> None:
        """Send one message; SMTP 4xx and connection errors raise, so the activity retries.

        Over a connection kept from an earlier message when one is idle (no connect, EHLO,
        STARTTLS, login and QUIT per message: half the CPU of a send, `bench/validation_sql.py`),
        else a new one. An idle connection the server has closed meanwhile fails at its first
        command, before any message data: the message then goes over a new connection. After
        any other failure the connection is dropped, never reused in an unknown state."""
        message = self.build(email)
        while (kept := self._take_idle()) is not None:
            try:
                await kept.send_message(message)
            except aiosmtplib.SMTPServerDisconnected:
                kept.close()  # closed by the server while idle: try the next, or a new one
                continue
            except BaseException:
                kept.close()
                raise
            self._keep(kept)
            return
        client = self._new_client()
        try:
            await client.connect()
            await client.send_message(message)
        except BaseException:
            client.close()
            raise
        self._keep(client)

    def _new_client(self) -> aiosmtplib.SMTP:
        settings = self._settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            use_tls=settings.smtp_tls,
            start_tls=settings.smtp_starttls if settings.smtp_starttls else False,
            timeout=30,
        )

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        """The most recently used idle connection still young enough, or None."""
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < IDLE_REUSE_SECONDS:
                return client
            client.close()
        return None

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        if len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append((client, time.monotonic()))
        else:
            client.close()

    async def close(self) -> None:
        """Say goodbye on the idle connections (at the worker's shutdown)."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            client.close()
