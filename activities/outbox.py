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
Ops resend a refused or failed row with `contracting mail resend KEY`
(`OutboxActivities.resend`): the same claim, so a resend and a delivery attempt, or two
resends run at once, send it once.

The Message-ID derives from the outbox key, so in the one remaining window
(the SMTP server accepted the message, then the process died before the commit) the resent
message carries the same Message-ID and mail clients show it once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import ColumnElement, Row, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningUpdate
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


SEND_NOW_BUDGET = 1.0
"""Seconds a transition's activity spends sending its e-mails right after its commit; what
is not sent by then is left to the workflow's delivery (workflows/effects.py)."""

SendNow = Callable[[list[str]], Awaitable[list[str]]]
"""Sends outbox rows at once; returns the keys still to deliver."""


async def keep_for_later(keys: list[str]) -> list[str]:
    """No sending at once: every key left to the workflow's delivery."""
    return keys


class BeingSent(Exception):
    """Another attempt holds a live claim on the row: retry once it has finished."""


class NoSuchEmail(LookupError):
    """No outbox row has this key."""


class NotResendable(Exception):
    """The row is not one ops may resend now (already sent, never attempted, being sent, or
    changed by another run meanwhile): the message says which and what to do."""


@dataclass(frozen=True)
class Resent:
    """What a resend did: `sent` now, or refused again for good (`refused`, the server's
    answer in `error`), and the row's attempts after it."""

    key: str
    sent: bool
    attempts: int
    error: str | None = None


class OutboxActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], mailer: Mailer) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._in_flight: set[asyncio.Task[bool | None]] = set()

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
        """True: sent now; False: sent before; None: refused for good (recorded).

        A delivery once begun is finished even when its caller stops waiting (`send_now`'s
        budget, a local attempt's timeout: both cancel): cancelled between its claim and its
        release, it left the row claimed for `CLAIM_LEASE` with nothing sent, and every
        delivery of it waited two minutes (seen under load, a test's e-mails unsent 20 s
        later). So it runs as a task of its own, claim, send and mark together."""
        task = asyncio.ensure_future(self._claim_and_send(key))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[bool | None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that stopped waiting has its retry

    async def _claim_and_send(self, key: str) -> bool | None:
        token = str(uuid.uuid4())
        email = await self._claim(key, token)
        if email is None:
            return False
        return await self._send_claimed(key, token, email)

    async def _send_claimed(self, key: str, token: str, email: OutgoingEmail) -> bool | None:
        """Send a row this attempt claimed: True once marked sent, None refused for good
        (recorded); a transient failure is recorded, the claim released, and raises."""
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
        # The key names the e-mail (event, mission, recipient's role), never the address:
        # logs leave the ledger and its access rules.
        activity.logger.info("email %s sent (%d recipients)", key, len(email.recipients))
        return True

    async def resend(self, key: str, *, force: bool = False) -> Resent:
        """Ops deliver one row again, outside any workflow: a row refused for good, or one
        whose last attempt failed (`last_error`); a row already sent or never attempted only
        with `force`. The claim is taken only if the row is still as read (`attempts` counts
        every claim), so two resends run at once send it once: the second is refused.

        Raises `NoSuchEmail`, `NotResendable`, or the SMTP error of a transient failure
        (recorded on the row, whose status does not change)."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    select(
                        EmailOutbox.status,
                        EmailOutbox.attempts,
                        EmailOutbox.last_error,
                        EmailOutbox.sent_at,
                        EmailOutbox.claimed_until,
                        func.now().label("now"),
                    ).where(EmailOutbox.outbox_key == key)
                )
            ).one_or_none()
        if row is None:
            raise NoSuchEmail(f"no e-mail in the outbox with key {key!r}")
        if row.claimed_until is not None and row.claimed_until > row.now:
            raise NotResendable(
                f"e-mail {key} is being sent by another attempt until "
                f"{row.claimed_until.isoformat(timespec='seconds')}: run this again after it"
            )
        if row.status is OutboxStatus.SENT and not force:
            sent_at = row.sent_at.isoformat(timespec="seconds") if row.sent_at else "?"
            raise NotResendable(
                f"e-mail {key} was already sent (at {sent_at}): add --force to send it again"
            )
        if row.status is OutboxStatus.PENDING and row.last_error is None and not force:
            raise NotResendable(
                f"e-mail {key} has not failed (pending, never refused): the worker delivers "
                "it; add --force to send it now anyway"
            )
        token = str(uuid.uuid4())
        email = await self._claim_as_read(key, token, row.attempts)
        if email is None:
            raise NotResendable(
                f"e-mail {key} changed while this resend started (another resend or a delivery "
                "attempt took it): run this again to see where it stands"
            )
        sent = await self._send_claimed(key, token, email)
        async with self._sessions.begin() as session:
            after = (
                await session.execute(
                    select(EmailOutbox.attempts, EmailOutbox.last_error).where(
                        EmailOutbox.outbox_key == key
                    )
                )
            ).one()
        return Resent(
            key=key,
            sent=sent is True,
            attempts=after.attempts,
            error=None if sent else after.last_error,
        )

    async def _claim_as_read(self, key: str, token: str, attempts: int) -> OutgoingEmail | None:
        """Claim the row whatever its status, if nobody claimed it since it was read."""
        async with self._sessions.begin() as session:
            claimed = (
                await session.execute(
                    _CLAIM_AS_READ, {"key": key, "token": token, "attempts": attempts}
                )
            ).one_or_none()
        return None if claimed is None else _outgoing(key, claimed)

    async def _claim(self, key: str, token: str) -> OutgoingEmail | None:
        """Claim the row for this attempt and return its message; None if already sent.

        Raises `BeingSent` while another attempt's claim is live."""
        async with self._sessions.begin() as session:
            claimed = (
                await session.execute(_CLAIM_UNSENT, {"key": key, "token": token})
            ).one_or_none()
            if claimed is not None:
                return _outgoing(key, claimed)
            row = (await session.execute(_WHY_UNCLAIMED, {"key": key})).one_or_none()
        if row is None:
            raise ApplicationError(f"no outbox row with key {key!r}", non_retryable=True)
        if row.status is OutboxStatus.SENT:
            return None
        raise BeingSent(f"email {key} is being sent by another attempt until {row.claimed_until}")

    async def _mark_sent(self, key: str, token: str, message_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                _UPDATE_THIS_CLAIM,
                {
                    "key": key,
                    "token": token,
                    "status": OutboxStatus.SENT,
                    "sent_at": datetime.now(UTC),
                    "message_id": message_id,
                    "claim_token": None,
                    "claimed_until": None,
                },
            )

    async def _release(self, key: str, token: str) -> None:
        """Give the claim back (the attempt was cancelled): the next attempt need not wait."""
        async with self._sessions.begin() as session:
            await session.execute(
                _UPDATE_THIS_CLAIM,
                {"key": key, "token": token, "claim_token": None, "claimed_until": None},
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


_OUTBOX: Table = EmailOutbox.__table__  # type: ignore[assignment]
"""Delivery's statements are Core statements on the table, built once with bound parameters:
the ORM adds nothing to them, and a statement built per call costs the worker its building
and its compiled-cache key every time (two transactions per e-mail)."""

_THIS_CLAIM = (
    _OUTBOX.c.outbox_key == bindparam("key"),
    _OUTBOX.c.claim_token == bindparam("token"),
)
"""The row of `key` while `token`'s claim holds it."""


def _claiming(*conditions: ColumnElement[bool]) -> ReturningUpdate[list[str], str, str, datetime]:
    """The UPDATE that claims the row of `:key` for `:token` when `conditions` hold and no
    other attempt's claim is live, returning what the message needs."""
    outbox = _OUTBOX.c
    return (
        update(_OUTBOX)
        .where(
            outbox.outbox_key == bindparam("key"),
            *conditions,
            or_(outbox.claimed_until.is_(None), outbox.claimed_until < func.now()),
        )
        .values(
            claim_token=bindparam("token"),
            claimed_until=func.now() + CLAIM_LEASE,
            attempts=outbox.attempts + 1,
        )
        .returning(outbox.recipients, outbox.subject, outbox.body_text, outbox.created_at)
    )


_CLAIM_UNSENT = _claiming(_OUTBOX.c.status != OutboxStatus.SENT)
"""A delivery's claim: any row not sent yet."""
_CLAIM_AS_READ = _claiming(_OUTBOX.c.attempts == bindparam("attempts"))
"""A resend's claim: the row whatever its status, if nobody claimed it since it was read."""
_WHY_UNCLAIMED = select(_OUTBOX.c.status, _OUTBOX.c.claimed_until).where(
    _OUTBOX.c.outbox_key == bindparam("key")
)
_UPDATE_THIS_CLAIM = update(_OUTBOX).where(*_THIS_CLAIM)
"""Marking the row sent, or releasing it: the values (the claim cleared, and for a sent row
its status, sent_at and message_id) are the execution's parameters."""


def _outgoing(key: str, claimed: Row[list[str], str, str, datetime]) -> OutgoingEmail:
    return OutgoingEmail(
        recipients=list(claimed.recipients),
        subject=claimed.subject,
        body=claimed.body_text,
        message_id=message_id_for(key),
        created_at=claimed.created_at,
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
