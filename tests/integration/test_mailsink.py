"""The SMTP sink: what it stores, and a temporary failure followed by recovery."""

from __future__ import annotations

import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from starter.devstack.mailsink import MailSink, eml_file_name


def _message(message_id: str, subject: str = "Votre CRA est validé") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "no-reply@contracting.localhost"
    message["To"] = "provider@example.com"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content("Bonjour,\n\nvotre compte rendu d'activité de mars est validé.\n")
    return message


async def _send(sink: MailSink, message: EmailMessage, recipients: list[str] | None = None) -> None:
    await aiosmtplib.send(
        message, hostname=sink.host, port=sink.port, timeout=5, recipients=recipients
    )


async def test_every_message_is_stored_as_an_eml_file(smtp_sink: MailSink) -> None:
    await _send(smtp_sink, _message("<outbox-1@contracting.localhost>"))
    await _send(
        smtp_sink,
        _message("<outbox-2@contracting.localhost>", "Facture"),
        recipients=["provider@example.com", "ops@contracting.localhost"],
    )

    first, second = await smtp_sink.wait_for_async(2, timeout=5)

    files = sorted(smtp_sink.directory.glob("*.eml"))
    assert files == [first.path, second.path]
    assert "outbox-1@contracting.localhost" in files[0].name
    assert first.message_id == "<outbox-1@contracting.localhost>"
    assert first.subject == "Votre CRA est validé"
    assert "mars est validé" in first.text()
    assert second.rcpt_tos == ("provider@example.com", "ops@contracting.localhost")
    stored = files[1].read_bytes()
    assert stored.startswith(b"X-Envelope-From: <no-reply@contracting.localhost>\r\n")
    assert b"X-Envelope-To: provider@example.com, ops@contracting.localhost" in stored


async def test_the_same_message_id_twice_gives_two_files(smtp_sink: MailSink) -> None:
    await _send(smtp_sink, _message("<same@contracting.localhost>"))
    await _send(smtp_sink, _message("<same@contracting.localhost>"))

    await smtp_sink.wait_for_async(2, timeout=5)

    assert len(list(smtp_sink.directory.glob("*same@contracting.localhost.eml"))) == 2


async def test_temporary_failure_then_recovery(smtp_sink: MailSink) -> None:
    smtp_sink.fail_next(2)

    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPResponseException) as failure:
            await _send(smtp_sink, _message("<retry@contracting.localhost>"))
        assert failure.value.code == 451
        assert "4.3.0 Try again later" in failure.value.message
    assert smtp_sink.messages == []
    assert list(smtp_sink.directory.glob("*.eml")) == []

    await _send(smtp_sink, _message("<retry@contracting.localhost>"))

    [received] = await smtp_sink.wait_for_async(1, timeout=5)
    assert received.message_id == "<retry@contracting.localhost>"
    assert smtp_sink.failures_served == 2


async def test_a_permanent_failure_can_be_simulated(smtp_sink: MailSink) -> None:
    smtp_sink.fail_next(1, code=550)

    with pytest.raises(aiosmtplib.SMTPResponseException) as failure:
        await _send(smtp_sink, _message("<permanent@contracting.localhost>"))

    assert failure.value.code == 550


def test_wait_for_times_out_with_what_was_received(smtp_sink: MailSink) -> None:
    with pytest.raises(TimeoutError, match="received 0"):
        smtp_sink.wait_for(1, timeout=0.05)


def test_file_names_sort_by_arrival_and_are_safe() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 3, 31, 9, 30, 12, 123456, tzinfo=UTC)
    name = eml_file_name(at, 7, "<a/b\\c d@x>")
    assert name == "20260331T093012.123456Z-000007-a_b_c_d@x.eml"
    assert eml_file_name(at, 8, None).endswith("-000008-no-message-id.eml")
    assert eml_file_name(at, 7, "<x>") < eml_file_name(at, 8, "<a>")


def test_runs_as_a_process(tmp_path: Path) -> None:
    """`python -m starter.devstack.mailsink` is what `contracting dev` starts."""
    import smtplib
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "starter.devstack.mailsink",
            "--dir",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "mail sink ready" in process.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.send_message(_message("<process@contracting.localhost>"))
        deadline = time.monotonic() + 5
        while not list(tmp_path.glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(list(tmp_path.glob("*process@contracting.localhost.eml"))) == 1
    finally:
        process.terminate()
        assert process.wait(10) == 0


async def test_a_faults_file_scripts_451s_a_refused_recipient_and_a_hang(tmp_path: Path) -> None:
    """What `contracting dev`'s sink reads from var/mailsink-faults.json, changed while it runs."""
    faults = tmp_path / "faults.json"
    sink = MailSink(tmp_path / "mail", port=0, faults_file=faults)
    with sink:
        faults.write_text('{"temporary_every": 2}')
        await _send(sink, _message("<a@contracting.localhost>"))
        with pytest.raises(aiosmtplib.SMTPDataError) as second:
            await _send(sink, _message("<b@contracting.localhost>"))
        assert second.value.code == 451
        await _send(sink, _message("<c@contracting.localhost>"))

        faults.write_text('{"reject_recipients": ["Provider@Example.com"]}')
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _send(sink, _message("<d@contracting.localhost>"))
        assert refused.value.recipients[0].code == 550
        await _send(sink, _message("<e@contracting.localhost>"), recipients=["ops@example.com"])

        faults.write_text('{"hang_seconds": 3}')
        with pytest.raises(aiosmtplib.SMTPTimeoutError):
            await aiosmtplib.send(
                _message("<f@contracting.localhost>"), hostname=sink.host, port=sink.port, timeout=1
            )
        faults.unlink()
        await _send(sink, _message("<g@contracting.localhost>"))
    assert [m.message_id for m in sink.messages] == [
        "<a@contracting.localhost>",
        "<c@contracting.localhost>",
        "<e@contracting.localhost>",
        "<g@contracting.localhost>",
    ]
