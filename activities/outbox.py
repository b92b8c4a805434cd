"""Delivering the email outbox: each row is sent at most once per successful commit.

The row is locked (`SELECT … FOR UPDATE`) while its message is sent, so two attempts of the
same activity (a timed-out one still running and its retry) cannot both send it; a row marked
sent is skipped. The Message-ID derives from the outbox key, so in the one remaining window
(the SMTP server accepted the message, then the process died before the commit) the resent
message carries the same Message-ID and mail clients show it once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mailer import Mailer, OutgoingEmail, message_id_for
from db.models import EmailOutbox
from schemas.activities import DeliverOutboxInput, DeliverOutboxResult
from schemas.enums import OutboxStatus
from schemas.names import DELIVER_OUTBOX


class OutboxActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], mailer: Mailer) -> None:
        self._sessions = sessions
        self._mailer = mailer

    @activity.defn(name=DELIVER_OUTBOX)
    async def deliver_outbox(self, inp: DeliverOutboxInput) -> DeliverOutboxResult:
        """Send the pending rows among `keys`; SMTP 4xx and lost connections retry."""
        result = DeliverOutboxResult()
        for key in inp.keys:
            if await self._deliver_one(key):
                result.sent += 1
            else:
                result.already_sent += 1
        return result

    async def _deliver_one(self, key: str) -> bool:
        try:
            sent_to = await self._send_locked(key)
        except aiosmtplib.SMTPException as exc:
            # The row lock is released (rolled back) before the failure is recorded.
            await self._record_failure(key, exc)
            error = _as_activity_error(key, exc)
            if error is exc:
                raise  # transient: retried as it is (not chained to itself)
            raise error from exc
        if sent_to is None:
            return False
        activity.logger.info("email %s sent to %s", key, ", ".join(sent_to))
        return True

    async def _send_locked(self, key: str) -> list[str] | None:
        """Send the row's message while holding its lock; None if it was already sent."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    select(EmailOutbox).where(EmailOutbox.outbox_key == key).with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                raise ApplicationError(f"no outbox row with key {key!r}", non_retryable=True)
            if row.status == OutboxStatus.SENT:
                return None
            email = OutgoingEmail(
                recipients=list(row.recipients),
                subject=row.subject,
                body=row.body_text,
                message_id=message_id_for(key),
                created_at=row.created_at,
            )
            await self._mailer.send(email)
            row.status = OutboxStatus.SENT
            row.sent_at = datetime.now(UTC)
            row.message_id = email.message_id
            row.attempts += 1
            return email.recipients

    async def _record_failure(self, key: str, exc: Exception) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.outbox_key == key)
                .values(attempts=EmailOutbox.attempts + 1, last_error=str(exc)[:2000])
            )


def _as_activity_error(key: str, exc: aiosmtplib.SMTPException) -> Exception:
    """A permanent SMTP refusal (5xx) will not get better by retrying; the rest will."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 500 <= code < 600:
        return ApplicationError(
            f"the SMTP server refused email {key!r} permanently ({code}): {exc}; "
            "fix the recipient or the relay, then resend it",
            type="SmtpPermanentFailure",
            non_retryable=True,
        )
    return exc
