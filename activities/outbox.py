"""Delivering the email outbox: each row is sent at most once per successful commit.

The row is locked (`SELECT … FOR UPDATE`) while its message is sent, so two attempts of the
same activity (a timed-out one still running and its retry) cannot both send it; a row marked
sent is skipped. A permanent refusal (5xx, or every recipient refused) marks its row
`refused` with the server's answer and a timeline row, and the other emails of the call are
still sent: one bad address never holds back the rest, and never fails the workflow;
transient failures (4xx, lost connections) raise, and Temporal retries.

The Message-ID derives from the outbox key, so in the one remaining window
(the SMTP server accepted the message, then the process died before the commit) the resent
message carries the same Message-ID and mail clients show it once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mailer import Mailer, OutgoingEmail, message_id_for
from activities.transitions import record_timeline
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
        """Send the pending rows among `keys`; SMTP 4xx and lost connections retry, a
        permanent refusal is recorded on its row and the next keys are still sent."""
        result = DeliverOutboxResult()
        transient: aiosmtplib.SMTPException | None = None
        for key in inp.keys:
            try:
                sent = await self._deliver_one(key)
            except aiosmtplib.SMTPException as exc:
                transient = transient or exc  # the others are still tried; then a retry
                continue
            if sent is None:
                result.refused.append(key)
            elif sent:
                result.sent += 1
            else:
                result.already_sent += 1
        if transient is not None:
            raise transient
        return result

    async def _deliver_one(self, key: str) -> bool | None:
        """True: sent now; False: sent before; None: refused for good (recorded)."""
        try:
            sent_to = await self._send_locked(key)
        except aiosmtplib.SMTPException as exc:
            # The row lock is released (rolled back) before the failure is recorded.
            code = permanent_code(exc)
            await self._record_failure(key, exc, refused=code is not None)
            if code is None:
                raise
            activity.logger.error(
                "email %s refused for good by the SMTP server (%s): %s; fix the recipient or "
                "the relay, then resend it",
                key,
                code,
                exc,
            )
            return None
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
            if row.status is OutboxStatus.SENT:
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

    async def _record_failure(self, key: str, exc: Exception, *, refused: bool) -> None:
        """The attempt and the server's answer on the row; a refusal for good also marks it
        `refused` and writes the mission's timeline (`email.refused`), once."""
        async with self._sessions.begin() as session:
            values: dict[str, Any] = {
                "attempts": EmailOutbox.attempts + 1,
                "last_error": str(exc)[:2000],
            }
            if refused:
                values["status"] = OutboxStatus.REFUSED
            row = (
                await session.execute(
                    update(EmailOutbox)
                    .where(EmailOutbox.outbox_key == key, EmailOutbox.status != OutboxStatus.SENT)
                    .values(**values)
                    .returning(EmailOutbox.mission_id, EmailOutbox.template, EmailOutbox.attempts)
                )
            ).one_or_none()
            if refused and row is not None and row.mission_id is not None:
                await record_timeline(
                    session,
                    key=f"{key}:refused:{row.attempts}",
                    mission_id=row.mission_id,
                    kind="email.refused",
                    at=datetime.now(UTC),
                    data={"outbox_key": key, "template": row.template, "error": str(exc)[:500]},
                )


def permanent_code(exc: aiosmtplib.SMTPException) -> int | None:
    """The 5xx code of a refusal that retrying will not change, or None (transient).

    `SMTPRecipientsRefused` carries no code of its own: it is permanent when every recipient
    was refused with a 5xx (a 4xx, "mailbox busy", may pass later)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        if codes and all(500 <= code < 600 for code in codes):
            return codes[0]
        return None
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 500 <= code < 600:
        return code
    return None
