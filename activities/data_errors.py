"""Data the database refuses for good is a non-retryable activity failure, never a retry loop.

A value too long for its column, an amount beyond its precision, a CHECK or a foreign key
violated (SQLSTATE classes 22 and 23) fails the same way on every attempt: retried without end,
it would hold every later transition of its workflow behind it. The worker's interceptor
(`DataRefusals`) turns such an error, raised by any activity, into an `ApplicationError` of
type `DataRefused`, `non_retryable=True`, whose message says what was refused (SQLSTATE,
table, column, constraint) but never the values (personal data): the SQL parameters of the
original error are not kept, not even as its cause.

Retried as before: unique violations (23505, 23P01: a concurrent writer of the same business
key; the retry finds the row, the idempotency the activities rely on) and every transient
fault (a lost connection, a serialization failure, a deadlock: classes 08 and 40).

Every other error leaving an activity is stored by Temporal as its failure message (shown in
the UI, kept for the namespace's retention): one that embeds SQL or its values (SQLAlchemy's
`[SQL: …] [parameters: …]`, psycopg's `DETAIL:  Key (email)=(…)`) is re-raised with a scrubbed
message (`scrubbed_failure`): its type, SQLSTATE, table and constraint, never the statement
or the values; retryable or not as the original was.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from schemas.names import DATA_REFUSED

log = logging.getLogger("contracting.activities")

RETRIED = frozenset({"23505", "23P01"})
"""Integrity errors that a retry resolves: another writer of the same key committed first."""

VALUE_FREE = frozenset({"22001", "22003", "23502", "23503", "23514"})
"""SQLSTATEs whose primary message names types, tables and constraints but no value (too
long, numeric overflow, not null, foreign key, check); other messages may quote the value."""


def _sqlstate_error(exc: BaseException) -> Any | None:
    """The driver's error (psycopg) behind `exc`, whatever wraps it (SQLAlchemy)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None):
            return current
        orig = getattr(current, "orig", None)  # sqlalchemy.exc.DBAPIError
        if isinstance(orig, BaseException) and getattr(orig, "sqlstate", None):
            return orig
        current = current.__cause__ or current.__context__
    return None


def is_data_refusal(sqlstate: str) -> bool:
    """A permanent data error: class 22 (data exception) or 23 (integrity), but a unique one."""
    return sqlstate[:2] in ("22", "23") and sqlstate not in RETRIED


def data_refusal(exc: BaseException) -> ApplicationError | None:
    """The non-retryable `DataRefused` error for `exc`, or None when it may pass on retry."""
    error = _sqlstate_error(exc)
    if error is None:
        return None
    sqlstate = str(error.sqlstate)
    if not is_data_refusal(sqlstate):
        return None
    diag = getattr(error, "diag", None)
    where = [
        f"{label} {value}"
        for label, value in (
            ("table", getattr(diag, "table_name", None)),
            ("column", getattr(diag, "column_name", None)),
            ("constraint", getattr(diag, "constraint_name", None)),
        )
        if value
    ]
    said = getattr(diag, "message_primary", None) if sqlstate in VALUE_FREE else None
    message = f"the database refused the data for good: SQLSTATE {sqlstate} {type(error).__name__}"
    if said:
        message += f" ({said})"
    if where:
        message += f", {', '.join(where)}"
    return ApplicationError(message, sqlstate, type=DATA_REFUSED, non_retryable=True)


_SQL_TEXT = re.compile(r"\[SQL: |\[parameters: |^DETAIL: |^CONTEXT: |^LINE \d+: ", re.MULTILINE)
"""What SQLAlchemy and psycopg append to a message: the statement, its parameters, the
server's detail (`Key (email)=(jeanne@…) already exists`), context and the quoted line."""


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes (the failure Temporal stores carries the `__cause__` chain)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _carries_sql(exc: BaseException) -> bool:
    return any(
        _sqlstate_error(e) is not None or _SQL_TEXT.search(str(e)) is not None for e in _chain(exc)
    )


def _scrubbed_text(text: str) -> str:
    """`text` up to the first SQL, parameters or server detail it quotes."""
    found = _SQL_TEXT.search(text)
    return (text[: found.start()] if found else text).strip()


def database_error_summary(exc: BaseException) -> str:
    """`SQLSTATE 23505 UniqueViolation, table t, constraint c`: what a database error was
    (its type is the failure's type), without its statement, parameters or quoted values."""
    error = _sqlstate_error(exc)
    if error is None:
        return _scrubbed_text(str(exc)) or "database error (statement and values not kept)"
    sqlstate = str(error.sqlstate)
    diag = getattr(error, "diag", None)
    parts = [f"SQLSTATE {sqlstate} {type(error).__name__}"]
    said = getattr(diag, "message_primary", None) if sqlstate in VALUE_FREE else None
    if said:
        parts[0] += f" ({said})"
    parts += [
        f"{label} {value}"
        for label, value in (
            ("table", getattr(diag, "table_name", None)),
            ("column", getattr(diag, "column_name", None)),
            ("constraint", getattr(diag, "constraint_name", None)),
        )
        if value
    ]
    return ", ".join(parts) + " (statement and values not kept)"


def scrubbed_failure(exc: Exception) -> ApplicationError | None:
    """The error to raise instead of `exc` when it (or a cause) quotes SQL or its values;
    None when it quotes none. Same failure type and retryability: a retry policy or a
    workflow that reads them sees no difference."""
    if not _carries_sql(exc):
        return None
    if isinstance(exc, ApplicationError):
        return ApplicationError(
            _scrubbed_text(exc.message) or exc.type or "activity failed",
            *exc.details,
            type=exc.type,
            non_retryable=exc.non_retryable,
            next_retry_delay=exc.next_retry_delay,
            category=exc.category,
        )
    return ApplicationError(database_error_summary(exc), type=type(exc).__name__)


class _RefusalsAreFinal(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as exc:
            refused = data_refusal(exc)
            if refused is None:
                scrubbed = scrubbed_failure(exc)
                if scrubbed is None:
                    raise
                log.warning(
                    "%s failed (%s): %s",
                    activity.info().activity_type,
                    "not retryable" if scrubbed.non_retryable else "retryable",
                    scrubbed.message,
                )
                raise scrubbed from None  # the original quotes the SQL and its parameters
            subject = input.args[0] if input.args else None
            log.error(
                "%s refused by the database for good (not retried), mission %s: %s",
                activity.info().activity_type,
                getattr(subject, "mission_id", None),
                refused.message,
            )
            raise refused from None  # the original carries the SQL parameters: not kept


class DataRefusals(Interceptor):
    """The worker interceptor that makes data errors final and keeps SQL and its values out
    of every activity failure Temporal stores (every activity, one place)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RefusalsAreFinal(next)
