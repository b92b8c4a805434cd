"""The mailer keeps its SMTP connections between messages, and never loses or doubles a
message over one the server has closed meanwhile (a real SMTP server, aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from activities.mailer import Mailer, OutgoingEmail
from settings import Settings
from tests.fixtures.postgres import free_port


class Server:
    """Counts the connections (EHLO) and the messages; can refuse the next message."""

    def __init__(self) -> None:
        self.greetings = 0
        self.messages: list[str] = []
        self.refuse_next = False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next:
            self.refuse_next = False
            return "451 4.3.0 try again later"
        self.messages.append(envelope.content.decode())
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Server, Controller]]:
    handler = Server()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller
    finally:
        controller.stop()


def mail(number: int) -> OutgoingEmail:
    return OutgoingEmail(
        recipients=["provider@example.org"],
        subject=f"Message {number}",
        body="Bonjour",
        message_id=f"<m{number}@contracting.localhost>",
        created_at=datetime(2026, 10, 31, tzinfo=UTC),
    )


def mailer_for(controller: Controller) -> Mailer:
    return Mailer(Settings(smtp_host="127.0.0.1", smtp_port=controller.port))


async def test_messages_in_turn_share_one_connection(smtp: tuple[Server, Controller]) -> None:
    server, controller = smtp
    mailer = mailer_for(controller)
    for number in range(3):
        await mailer.send(mail(number))
    assert len(server.messages) == 3
    assert server.greetings == 1
    await mailer.close()


async def test_messages_at_once_open_connections_then_reuse_them(
    smtp: tuple[Server, Controller],
) -> None:
    server, controller = smtp
    mailer = mailer_for(controller)
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(3)))
    assert server.greetings == 3
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(3, 6)))
    assert len(server.messages) == 6 and server.greetings == 3
    await mailer.close()


async def test_a_connection_the_server_closed_is_replaced_and_the_message_sent_once() -> None:
    server = Server()
    first = Controller(server, hostname="127.0.0.1", port=free_port())
    first.start()
    mailer = mailer_for(first)
    await mailer.send(mail(1))
    first.stop()  # the server restarts: the mailer's idle connection is dead
    again = Controller(server, hostname="127.0.0.1", port=first.port)
    again.start()
    try:
        await mailer.send(mail(2))
    finally:
        await mailer.close()
        again.stop()
    assert len(server.messages) == 2 and "<m2@contracting.localhost>" in server.messages[1]
    assert server.greetings == 2


async def test_after_a_refusal_the_connection_is_not_reused(
    smtp: tuple[Server, Controller],
) -> None:
    server, controller = smtp
    mailer = mailer_for(controller)
    await mailer.send(mail(1))
    server.refuse_next = True
    with pytest.raises(aiosmtplib.SMTPResponseException):
        await mailer.send(mail(2))
    await mailer.send(mail(3))
    assert server.greetings == 2  # a fresh connection after the refusal
    assert len(server.messages) == 2
    await mailer.close()
