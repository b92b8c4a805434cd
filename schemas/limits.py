"""The limits the event contract and the database schema share, in one place.

The pydantic models (`schemas/common.py`, `schemas/events.py`) and the SQLAlchemy models
(`db/models.py`) both read these constants, so a value the gateway accepts always fits the
column it lands in: a value one past a limit is a 422 naming its field at the edge, never a
write the database refuses over and over (issue 12 point 2). tests/unit/test_contract_limits.py
checks every event field against the column it lands in, from both sides' metadata.
"""

from __future__ import annotations

from decimal import Decimal

ID_LENGTH = 100
"""A platform identifier (proposal, mission, RFP, client, approver, document): VARCHAR(100)."""

EVENT_ID_LENGTH = 200
"""A platform `event_id`: `processed_events.event_id`, `client_payments.event_id`."""

EMAIL_LENGTH = 254
"""An e-mail address (RFC 5321's path limit): `approvers.email`, `providers.email`."""

REFERENCE_LENGTH = 100
"""A business reference the platform chooses and the ledger keys on: a purchase order number,
an invoice number (`purchase_orders.po_number`, `invoices.number`)."""

TEXT_LENGTH = 2000
"""Free text (names, reasons, comments, labels, file references): stored as TEXT."""

KEY_LENGTH = 300
"""An idempotency key composed of ids (`mission_events.idempotency_key`,
`email_outbox.outbox_key`): longer compositions are shortened by `db.keys.fit_key`."""

MONTH_LENGTH = 10
"""A month or billing-period key, `YYYY-MM` or `YYYY-MM-p2`."""

MONEY_PRECISION = 12
MONEY_SCALE = 2
"""Money columns are NUMERIC(12, 2): below 10^10 euros in absolute value, to the cent."""

MONEY_COLUMN_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)
"""The first amount a money column refuses (10,000,000,000.00: `numeric field overflow`)."""

MONEY_LIMIT = MONEY_COLUMN_LIMIT / 10
"""An amount of the contract is below a billion euros in absolute value: a tenth of what a
column holds, so that what the ledger adds up (a month's lines, VAT) has room; a CRA whose
invoice would not fit anyway is refused by its cycle (`domain.cra.check_amounts`). It also
keeps a buggy sender's 1e26 out of the decimal context (28 digits)."""
