"""Bounded waits: every wait says what did not happen (docs/testing.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starter.devstack.mailsink import MailSink, ReceivedMessage


async def eventually(predicate: Callable[[], Awaitable[Any]], within: float = 10.0) -> None:
    """Wait until an async predicate holds (work done by the worker in the background)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached within the timeout")
        await asyncio.sleep(0.05)


def naming(needle: str) -> Callable[[ReceivedMessage], bool]:
    """The mails whose Message-ID (derived from the outbox key) names `needle`: a test's own
    mails, as the session's sink also receives those of workflows other tests left running on
    the session's dev server."""
    return lambda m: needle in (m.message_id or "")


def own(sink: MailSink, needle: str) -> list[ReceivedMessage]:
    """The sink's mails whose Message-ID names `needle` (see `naming`)."""
    return [m for m in sink.messages if naming(needle)(m)]


def about(mission_id: str, subject_part: str) -> Callable[[ReceivedMessage], bool]:
    """A mail of that mission whose subject holds `subject_part`."""
    return lambda m: mission_id in (m.message_id or "") and subject_part in m.subject


async def mails(
    sink: MailSink,
    predicate: Callable[[ReceivedMessage], bool],
    count: int,
    within: float = 15.0,
) -> list[ReceivedMessage]:
    """The sink's mails that `predicate` accepts, once there are at least `count` of them."""

    async def arrived() -> bool:
        return len([m for m in sink.messages if predicate(m)]) >= count

    try:
        await eventually(arrived, within=within)
    except AssertionError:
        got = [m.subject for m in sink.messages if predicate(m)]
        raise AssertionError(f"{count} mail(s) expected within {within:.0f} s, got {got}") from None
    return [m for m in sink.messages if predicate(m)]
