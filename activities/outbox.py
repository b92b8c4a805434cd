"""Delivering the email outbox: each row is sent at most once per successful commit.

No database row lock or connection is held while SMTP talks: a short transaction claims the
row for `CLAIM_LEASE` (`claim_token`, `claimed_until`), the message is sent with no
connection checked out, and a second short transaction marks it sent. A second attempt of
the same delivery (a timed-out one still running and its retry, or the next run of a
workflow that continued as new) finds the live claim and retries later, when the row is
sent; a claim left by a dead worker lapses. A permanent refusal (5xx, or every recipient
refused) marks its row `refused` with the server's answer and a timeline row, and the other
emails of the call are still sent: one bad address never holds back the rest, and never
fails the workflow; transient failures (4xx, lost connections) raise, and Temporal retries.
Ops resend a refused row through the same activity.

The Message-ID derives from the outbox key, so in the one remaining window
(the SMTP server accepted the message, then the process died before the commit) the resent
message carries the same Message-ID and mail clients show it once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mailer import Mailer, OutgoingEmail, message_id_for
from activities.transitions import record_timeline
from db.models import EmailOutbox
from schemas.activities import DeliverOutboxInput, DeliverOutboxResult
from schemas.enums import OutboxStatus
from schemas.names import DELIVER_OUTBOX

CLAIM_LEASE = timedelta(minutes=2)
"""How long an attempt owns a row it is sending: well past the SMTP timeout (30 s)."""


SEND_NOW_BUDGET = 5.0
"""Seconds a transition's activity spends sending its e-mails right after its commit; what
is not sent by then is left to the workflow's delivery (workflows/effects.py)."""

SendNow = Callable[[list[str]], Awaitable[list[str]]]
"""Sends outbox rows at once; returns the keys still to deliver."""


async def keep_for_later(keys: list[str]) -> list[str]:
    """No sending at once: every key left to the workflow's delivery."""
    return keys


class BeingSent(Exception):
    """Another attempt holds a live claim on the row: retry once it has finished."""


class OutboxActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], mailer: Mailer) -> None:
        self._sessions = sessions
        self._mailer = mailer

    @activity.defn(name=DELIVER_OUTBOX)
    async def deliver_outbox(self, inp: DeliverOutboxInput) -> DeliverOutboxResult:
        """Send the pending rows among `keys`; SMTP 4xx and lost connections retry, a
        permanent refusal is recorded on its row and the next keys are still sent."""
        result = DeliverOutboxResult()
        transient: Exception | None = None
        for key in inp.keys:
            try:
                sent = await self._deliver_one(key)
            except (aiosmtplib.SMTPException, BeingSent) as exc:
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

    async def send_now(self, keys: list[str]) -> list[str]:
        """The first attempt of a transition's e-mails, by the activity that queued them,
        right after its commit: one activity fewer (and no workflow task) per transition
        when SMTP is up. Returns the keys still to deliver (a transient failure, or the
        budget spent: the workflow's delivery retries them); a row sent or refused for good
        is done. Safe to repeat: each row is claimed before it is sent."""
        deadline = time.monotonic() + SEND_NOW_BUDGET
        left: list[str] = []
        for index, key in enumerate(keys):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left.extend(keys[index:])
                break
            try:
                await asyncio.wait_for(self._deliver_one(key), remaining)
            except Exception as exc:  # whatever it is, the workflow's delivery retries it
                activity.logger.info("email %s left to the workflow's delivery: %r", key, exc)
                left.append(key)
        return left

    async def _deliver_one(self, key: str) -> bool | None:
        """True: sent now; False: sent before; None: refused for good (recorded)."""
        token = str(uuid.uuid4())
        email = await self._claim(key, token)
        if email is None:
            return False
        try:
            await self._mailer.send(email)  # no connection, no lock held meanwhile
        except aiosmtplib.SMTPException as exc:
            code = permanent_code(exc)
            await self._record_failure(key, token, exc, refused=code is not None)
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
        except BaseException:
            await self._release(key, token)
            raise
        await self._mark_sent(key, token, email.message_id)
        activity.logger.info("email %s sent to %s", key, ", ".join(email.recipients))
        return True

    async def _claim(self, key: str, token: str) -> OutgoingEmail | None:
        """Claim the row for this attempt and return its message; None if already sent.

        Raises `BeingSent` while another attempt's claim is live."""
        async with self._sessions.begin() as session:
            claimed = (
                await session.execute(
                    update(EmailOutbox)
                    .where(
                        EmailOutbox.outbox_key == key,
                        EmailOutbox.status != OutboxStatus.SENT,
                        or_(
                            EmailOutbox.claimed_until.is_(None),
                            EmailOutbox.claimed_until < func.now(),
                        ),
                    )
                    .values(
                        claim_token=token,
                        claimed_until=func.now() + CLAIM_LEASE,
                        attempts=EmailOutbox.attempts + 1,
                    )
                    .returning(
                        EmailOutbox.recipients,
                        EmailOutbox.subject,
                        EmailOutbox.body_text,
                        EmailOutbox.created_at,
                    )
                )
            ).one_or_none()
            if claimed is not None:
                return OutgoingEmail(
                    recipients=list(claimed.recipients),
                    subject=claimed.subject,
                    body=claimed.body_text,
                    message_id=message_id_for(key),
                    created_at=claimed.created_at,
                )
            row = (
                await session.execute(
                    select(EmailOutbox.status, EmailOutbox.claimed_until).where(
                        EmailOutbox.outbox_key == key
                    )
                )
            ).one_or_none()
        if row is None:
            raise ApplicationError(f"no outbox row with key {key!r}", non_retryable=True)
        if row.status is OutboxStatus.SENT:
            return None
        raise BeingSent(f"email {key} is being sent by another attempt until {row.claimed_until}")

    async def _mark_sent(self, key: str, token: str, message_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.outbox_key == key, EmailOutbox.claim_token == token)
                .values(
                    status=OutboxStatus.SENT,
                    sent_at=datetime.now(UTC),
                    message_id=message_id,
                    claim_token=None,
                    claimed_until=None,
                )
            )

    async def _release(self, key: str, token: str) -> None:
        """Give the claim back (the attempt was cancelled): the next attempt need not wait."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.outbox_key == key, EmailOutbox.claim_token == token)
                .values(claim_token=None, claimed_until=None)
            )

    async def _record_failure(self, key: str, token: str, exc: Exception, *, refused: bool) -> None:
        """The server's answer on the row, the claim released; a refusal for good also marks
        it `refused` and writes the mission's timeline (`email.refused`), once."""
        async with self._sessions.begin() as session:
            values: dict[str, Any] = {
                "last_error": str(exc)[:2000],
                "claim_token": None,
                "claimed_until": None,
            }
            if refused:
                values["status"] = OutboxStatus.REFUSED
            row = (
                await session.execute(
                    update(EmailOutbox)
                    .where(EmailOutbox.outbox_key == key, EmailOutbox.claim_token == token)
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
