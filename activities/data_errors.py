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
"""

from __future__ import annotations

import logging
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


class _RefusalsAreFinal(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as exc:
            refused = data_refusal(exc)
            if refused is None:
                raise
            subject = input.args[0] if input.args else None
            log.error(
                "%s refused by the database for good (not retried), mission %s: %s",
                activity.info().activity_type,
                getattr(subject, "mission_id", None),
                refused.message,
            )
            raise refused from None  # the original carries the SQL parameters: not kept


class DataRefusals(Interceptor):
    """The worker interceptor that makes data errors final (every activity, one place)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RefusalsAreFinal(next)
