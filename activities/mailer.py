"""SMTP delivery with aiosmtplib: the only place that talks to the mail server."""

from __future__ import annotations

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
        """Send one message; SMTP 4xx and connection errors raise, so the activity retries."""
        settings = self._settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        await aiosmtplib.send(
            self.build(email),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            use_tls=settings.smtp_tls,
            start_tls=settings.smtp_starttls if settings.smtp_starttls else False,
            timeout=30,
        )
