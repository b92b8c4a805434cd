"""Composed idempotency keys always fit their column (db/keys.py, issue 12 point 2)."""

from __future__ import annotations

import sqlalchemy as sa

from activities.mailer import message_id_for
from db.keys import fit_key
from db.models import Base, EmailOutbox, MissionEvent
from schemas.ids import fan_out_update_id
from schemas.limits import EMAIL_LENGTH, EVENT_ID_LENGTH, ID_LENGTH, KEY_LENGTH


def _length(model: type[Base], column: str) -> int:
    kind = model.__table__.c[column].type
    assert isinstance(kind, sa.String) and kind.length is not None
    return kind.length


def _longest_keys() -> list[str]:
    """Keys composed of the longest ids the contract accepts (the longest compositions)."""
    event_id, mission_id = "e" * EVENT_ID_LENGTH, "m" * ID_LENGTH
    address = "a" * (EMAIL_LENGTH - len("@acme.fr")) + "@acme.fr"
    update_id = fan_out_update_id(event_id, mission_id)  # rfp.closed's
    return [
        f"rfp.closed:{mission_id}:{update_id}:provider",
        f"rfp.closed:{event_id}:favourite:{address}",
        f"client_payment:{mission_id}:2026-07-p2:{event_id}:overpaid:ops",
        f"cra.submitted:{mission_id}:2026-07-p2:{event_id}:provider",
    ]


def test_a_key_that_fits_is_kept_as_is() -> None:
    key = "cra.validated:M-1:2026-07"
    assert fit_key(key) == key
    assert fit_key("k" * KEY_LENGTH) == "k" * KEY_LENGTH


def test_the_longest_compositions_fit_and_stay_distinct_and_stable() -> None:
    columns = [_length(EmailOutbox, "outbox_key"), _length(MissionEvent, "idempotency_key")]
    keys = _longest_keys()
    assert all(len(key) > KEY_LENGTH for key in keys), "the compositions should be too long"
    fitted = [fit_key(key) for key in keys]
    for length in columns:
        assert all(len(key) <= length for key in fitted)
    assert len(set(fitted)) == len(keys)
    assert fitted == [fit_key(key) for key in keys]  # a retry finds its key
    assert fit_key(keys[0] + "x") != fit_key(keys[0])  # the same head, another key
    assert all(key.startswith(original[:100]) for key, original in zip(fitted, keys, strict=True))


def test_the_message_id_of_the_longest_outbox_key_fits_its_column() -> None:
    length = _length(EmailOutbox, "message_id")
    for key in _longest_keys():
        assert len(message_id_for(fit_key(key))) <= length
    assert message_id_for("proposal.submitted:P-1:provider") == (
        "<proposal.submitted.P-1.provider@contracting.localhost>"
    )
