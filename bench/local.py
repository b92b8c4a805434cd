"""The throw-away parts of the benchmarks that run activities or workflows in their own
process: an SMTP sink on a free port and an embedded PostgreSQL, migrated."""

from __future__ import annotations

import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from starter.demo.simulate import _database
from starter.devstack.mailsink import MailSink


async def sink_and_database(stack: AsyncExitStack) -> tuple[MailSink, str]:
    """A started mail sink and the URL of a fresh database, both gone when `stack` closes."""
    mail_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mail-")))
    sink = MailSink(mail_dir, host="127.0.0.1", port=0)
    sink.start()
    stack.callback(sink.stop)
    url: str = await stack.enter_async_context(_database(None))
    return sink, url
