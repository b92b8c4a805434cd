"""What the database refuses for good is final, without the values (activities/data_errors.py).

Real errors from the real PostgreSQL: a value too long, an amount beyond NUMERIC(12, 2), a
CHECK and a NOT NULL become a non-retryable `DataRefused` whose message names the column or
the constraint but never the value; a unique violation and the transient faults stay
retryable (None).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import psycopg.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.data_errors import DataRefusals, data_refusal
from db.engine import create_engine
from db.migrate import upgrade_async
from db.models import InvoiceNumberSequence, MissionEvent
from schemas.names import DATA_REFUSED

SECRET = "Jeanne-Dupont-0612345678"
"""A value standing for personal data: it must appear in no refusal."""


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(fresh_database)
    engine = create_engine(fresh_database, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _refused(engine: AsyncEngine, statement: Any) -> DBAPIError:
    with pytest.raises(DBAPIError) as raised:
        async with engine.begin() as connection:
            await connection.execute(statement)
    assert SECRET in str(raised.value), "the driver's error should quote the value"
    return raised.value


def _sequence(**values: Any) -> Any:
    return (
        sa.insert(InvoiceNumberSequence)
        .values(issuer_siren="552100554", series=f"s-{SECRET}", last_number=1)
        .values(**values)
    )


async def test_a_value_too_long_is_final_and_names_the_type_not_the_value(
    engine: AsyncEngine,
) -> None:
    error = await _refused(engine, _sequence(series=SECRET * 10))
    refused = data_refusal(error)
    assert refused is not None and refused.non_retryable and refused.type == DATA_REFUSED
    assert "22001" in refused.message and "character varying(100)" in refused.message
    assert SECRET not in refused.message and SECRET not in str(refused.details)


async def test_an_amount_beyond_the_column_is_final(engine: AsyncEngine) -> None:
    error = await _refused(
        engine,
        sa.select(sa.cast(sa.literal(f"1{'0' * 10}", sa.Text), sa.Numeric(12, 2))).where(
            sa.literal(SECRET) == SECRET
        ),
    )
    refused = data_refusal(error)
    assert refused is not None and refused.non_retryable
    assert "22003" in refused.message and "numeric field overflow" in refused.message


async def test_a_check_and_a_not_null_are_final_and_name_their_constraint(
    engine: AsyncEngine,
) -> None:
    refused = data_refusal(await _refused(engine, _sequence(last_number=-1)))
    assert refused is not None and refused.non_retryable
    assert "ck_invoice_number_sequences_last_number" in refused.message
    assert "table invoice_number_sequences" in refused.message
    assert SECRET not in refused.message
    refused = data_refusal(
        await _refused(
            engine,
            sa.insert(MissionEvent).values(
                idempotency_key=SECRET, mission_id="M-1", kind=None, at=sa.func.now()
            ),
        )
    )
    assert refused is not None and "23502" in refused.message and "column kind" in refused.message
    assert SECRET not in refused.message


async def test_a_unique_violation_and_transient_faults_are_retried(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(_sequence())
    duplicate = await _refused(engine, _sequence())
    assert isinstance(duplicate.orig, psycopg.errors.UniqueViolation)
    assert data_refusal(duplicate) is None
    for transient in (
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
    ):
        wrapped = OperationalError("INSERT …", {}, transient)
        assert data_refusal(wrapped) is None, transient
    assert data_refusal(ValueError(Decimal("1"))) is None


async def _through_the_interceptor(error: BaseException) -> ApplicationError:
    """What the worker's interceptor lets Temporal store when an activity raises `error`."""

    class Raising(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            raise error

    intercepted = DataRefusals().intercept_activity(Raising(None))  # type: ignore[arg-type]
    call = ExecuteActivityInput(fn=len, args=(), executor=None, headers={})

    async def run() -> Any:
        return await intercepted.execute_activity(call)

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(run)
    return raised.value


async def test_no_statement_or_value_reaches_a_stored_failure(engine: AsyncEngine) -> None:
    """A unique violation (its DETAIL quotes the key's value) is retried as before, with its
    SQLSTATE, table and constraint only."""
    async with engine.begin() as connection:
        await connection.execute(_sequence())
    duplicate = await _refused(engine, _sequence())
    assert "DETAIL:  Key" in str(duplicate) and "[parameters:" in str(duplicate)
    stored = await _through_the_interceptor(duplicate)
    assert SECRET not in stored.message and stored.__cause__ is None
    assert stored.type == "IntegrityError" and not stored.non_retryable  # retried as before
    assert "SQLSTATE 23505 UniqueViolation" in stored.message
    assert "table invoice_number_sequences" in stored.message
    assert "constraint pk_invoice_number_sequences" in stored.message

    # Any error quoting SQL is scrubbed, whatever its class, and keeps its retryability.
    undefined = await _refused(engine, sa.text(f"SELECT nope WHERE '{SECRET}' <> ''"))
    assert "LINE 1:" in str(undefined)  # the server quotes the statement's line
    wrapped = ApplicationError(f"billing failed: {undefined}", type="Billing", non_retryable=True)
    wrapped.__cause__ = undefined
    stored = await _through_the_interceptor(wrapped)
    assert stored.message == (
        'billing failed: (psycopg.errors.UndefinedColumn) column "nope" does not exist'
    )
    assert (stored.type, stored.non_retryable) == ("Billing", True)
    plain = RuntimeError("lookup failed\n[SQL: SELECT * FROM t WHERE email = %(e)s]")
    scrubbed = await _through_the_interceptor(plain)
    assert (scrubbed.message, scrubbed.type) == ("lookup failed", "RuntimeError")
    clean = ApplicationError("no outbox row", type="Outbox")
    assert (await _through_the_interceptor(clean)) is clean  # nothing to scrub: untouched
