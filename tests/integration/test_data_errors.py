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

from activities.data_errors import data_refusal
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
