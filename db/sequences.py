"""Gap-free, continuous invoice numbering per issuer (L441-9 Code de commerce).

A PostgreSQL SEQUENCE would leave gaps on rollback; a counter row does not: the upsert below
locks the issuer's row until the calling transaction ends, so the number is allocated only if
the invoice that uses it is committed, and concurrent allocations for the same issuer queue
behind each other.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import InvoiceNumberSequence

_SEQUENCES: sa.Table = InvoiceNumberSequence.__table__  # type: ignore[assignment]

_ALLOCATE = (
    insert(_SEQUENCES)
    .on_conflict_do_update(
        index_elements=[_SEQUENCES.c.issuer_siren, _SEQUENCES.c.series],
        set_={"last_number": _SEQUENCES.c.last_number + 1, "updated_at": sa.func.now()},
    )
    .returning(_SEQUENCES.c.last_number)
)
"""Built once (every validation allocates a number): its values are the execution's
parameters, a new counter starting at 1."""

INVOICE_SERIES = "invoice"
CREDIT_NOTE_SERIES = "credit_note"


async def next_number(
    session: AsyncSession | AsyncConnection, issuer_siren: str, series: str = INVOICE_SERIES
) -> int:
    """Allocate the next number (1, 2, …) of `series` for `issuer_siren`.

    Call it inside the transaction that writes the invoice or credit note. A series may be
    per year ("invoice-2026") if numbering restarts every year.
    """
    result = await session.execute(
        _ALLOCATE, {"issuer_siren": issuer_siren, "series": series, "last_number": 1}
    )
    return int(result.scalar_one())
