"""Parsing platform events at the edge: every error names the field path and what is wrong."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from domain.errors import DomainError, InvalidIdentifier
from domain.identifiers import validate_siren
from domain.vat import provider_vat_number, vat_regime
from observability import context
from schemas.events import PAYLOADS, Dated, Envelope, Event, ProposalSubmitted

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future an `occurred_at` may be: the platform's and our clocks differ by
seconds; a business date further ahead is a bug of the sender, refused (422)."""


EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
"""No fact of the platform is older; an earlier `occurred_at` is a sender's bug (year 1 at
+14:00 would even overflow the Paris business date), refused (422)."""


DATE_RANGE = (date(2000, 1, 1), date(2099, 12, 31))
"""Every date and timestamp of a payload lies in this century: year 9999 plus a document's
validity, or a timer in year 1, would overflow inside a workflow (stuck, not refused)."""


class EventError(Exception):
    """An event the gateway answers with a 4xx/5xx: the status and a body a person can act on."""

    status_code: int = 400

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "rejected", "detail": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class InvalidEvent(EventError):
    """Malformed envelope or payload (422): nothing is recorded."""

    status_code = 422


class NotApplicable(EventError):
    """Valid, but not applicable in the mission's current state (409): nothing changes."""

    status_code = 409


class UnknownTarget(EventError):
    """The mission or proposal the event refers to does not exist (404)."""

    status_code = 404


class NotYetSupported(EventError):
    """A type of the contract whose lifecycle stage has not landed yet (501)."""

    status_code = 501


class Unavailable(EventError):
    """Temporal or the database cannot be reached, or did not answer in time (503): the
    platform should retry with the same event_id, after `retry_after` seconds."""

    status_code = 503
    retry_after = 5

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = max(1, retry_after)


class TemporalUnavailable(Unavailable):
    """Temporal did not take the event (503): `reason` is `timeout`, `rejected` or
    `unreachable` (the gateway counts them: contracting_gateway_temporal_rpc_failures_total)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InFlight(Unavailable):
    """Another delivery of this event_id holds a live claim and is dispatching it (503): the
    event is not accepted yet, so this delivery must not be told `duplicate` — if the other
    one fails, only a retry makes the event happen. `retry_after`: until its lease ends."""

    def body(self) -> dict[str, Any]:
        return {**super().body(), "status": "in_flight"}


def _field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    return [
        {
            "loc": ".".join(str(part) for part in (*prefix, *error["loc"])),
            "msg": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False)
    ]


MAX_LOGGED_ID = 200
"""Longer `event_id`s or types are not copied to the log context (they are refused anyway)."""


def _bind_envelope(document: Any) -> None:
    """The event's id and type into the log context as soon as the body is JSON, so that
    even a malformed event's refusal is logged with the event_id the platform sent."""
    if not isinstance(document, dict):
        return
    fields = {
        name: value
        for name, value in (
            ("event_id", document.get("event_id")),
            ("event_type", document.get("type")),
        )
        if isinstance(value, str) and len(value) <= MAX_LOGGED_ID
    }
    context.bind(**fields)


def parse_event(raw: bytes, *, received_at: datetime | None = None) -> Event:
    """Validate the envelope, then the payload of its type; raise `InvalidEvent` on any error.

    `received_at` (now by default) bounds `occurred_at`: a fact cannot have happened more
    than `MAX_CLOCK_SKEW` after it was received. A dated payload gets the envelope's
    `occurred_at`: its business date (docs/events.md)."""
    try:
        document = json.loads(raw)
    except RecursionError:
        raise InvalidEvent("the body is nested too deeply to be an event") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"the body is not valid JSON: {exc}") from None
    except ValueError:  # Python refuses integers of more than 4300 digits (int_max_str_digits)
        raise InvalidEvent(
            "the body has a number with too many digits (more than "
            f"{sys.get_int_max_str_digits()}) to be an event"
        ) from None
    _bind_envelope(document)
    control = list(_control_characters(document, ()))
    if control:
        raise InvalidEvent("the body has text with control characters", errors=control)
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        raise InvalidEvent("the event envelope is invalid", errors=_field_errors(exc)) from exc
    _check_occurred_at(envelope, received_at or datetime.now(UTC))
    missing = _missing_at_edge(envelope.type, envelope.data)
    try:
        payload = PAYLOADS[envelope.type].model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEvent(
            f"the data of a {envelope.type!r} event is invalid",
            errors=_field_errors(exc, ("data",)) + missing,
        ) from exc
    if missing:
        raise InvalidEvent(f"the data of a {envelope.type!r} event is invalid", errors=missing)
    identifier_errors = list(_siren_errors(payload, ("data",)))
    if identifier_errors:
        raise InvalidEvent(
            f"the data of a {envelope.type!r} event has an invalid SIREN",
            errors=identifier_errors,
        )
    date_errors = _date_errors(payload, ("data",))
    if date_errors:
        raise InvalidEvent(
            f"the data of a {envelope.type!r} event has a date out of range", errors=date_errors
        )
    if isinstance(payload, ProposalSubmitted):
        payload = _checked_vat(payload)
    if isinstance(payload, Dated):
        payload = payload.model_copy(update={"occurred_at": envelope.occurred_at})
    return Event(
        event_id=envelope.event_id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        payload=payload,
    )


_CONTROL = frozenset(
    chr(code) for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)
)
"""Control characters no event text may carry (tab, line feed and carriage return may):
PostgreSQL refuses NUL in text, so such an event would be accepted (202) and then retried
for ever by the activity that records it (issue 12 point 8)."""


def _control_characters(value: object, loc: tuple[str | int, ...]) -> Iterator[dict[str, Any]]:
    """A 422 error for every string (key or value) of `value` holding a control character."""
    if isinstance(value, str):
        if not _CONTROL.isdisjoint(value):
            yield {
                "loc": ".".join(map(str, loc)) or "body",
                "msg": "control characters (such as NUL, \\u0000) are not allowed in text",
                "type": "control_character",
            }
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters(key, loc)
            yield from _control_characters(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _control_characters(item, (*loc, index))


def _check_occurred_at(envelope: Envelope, received_at: datetime) -> None:
    """The business date must be a moment that has happened, given once, in the envelope."""
    if "occurred_at" in envelope.data:
        raise InvalidEvent(
            "occurred_at belongs to the envelope, not to data",
            errors=[
                {
                    "loc": "data.occurred_at",
                    "msg": "remove it from data: the envelope's occurred_at dates the event",
                    "type": "extra_forbidden",
                }
            ],
        )
    if envelope.occurred_at < EARLIEST_OCCURRED_AT:
        raise InvalidEvent(
            "occurred_at is too far in the past",
            errors=[
                {
                    "loc": "occurred_at",
                    "msg": (
                        f"{envelope.occurred_at.isoformat()} is before "
                        f"{EARLIEST_OCCURRED_AT.date().isoformat()}: send the moment the fact "
                        "happened"
                    ),
                    "type": "value_error",
                }
            ],
        )
    if envelope.occurred_at > received_at + MAX_CLOCK_SKEW:
        raise InvalidEvent(
            "occurred_at is in the future",
            errors=[
                {
                    "loc": "occurred_at",
                    "msg": (
                        f"{envelope.occurred_at.isoformat()} is more than "
                        f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes after the event "
                        f"was received ({received_at.isoformat(timespec='seconds')}); send the "
                        "moment the fact happened"
                    ),
                    "type": "value_error",
                }
            ],
        )


REQUIRED_AT_EDGE: dict[str, tuple[tuple[str, str], ...]] = {
    "proposal.submitted": (
        ("client", "address"),
        ("client", "registration"),
        ("provider", "address"),
    ),
}
"""Fields the contract requires that the payload models leave optional: workflow histories
recorded before they were added carry payloads without them and must still deserialize."""


def _missing_at_edge(event_type: str, data: dict[str, object]) -> list[dict[str, Any]]:
    """A 422 error, pydantic-style, for each field of REQUIRED_AT_EDGE absent or null, and
    for a provider's address outside the provider's `country` (offers depend on it)."""
    errors: list[dict[str, Any]] = []
    for parent, field in REQUIRED_AT_EDGE.get(event_type, ()):
        holder = data.get(parent)
        if isinstance(holder, dict) and holder.get(field) is None:
            errors.append(
                {"loc": f"data.{parent}.{field}", "msg": "Field required", "type": "missing"}
            )
    provider = data.get("provider") if event_type == "proposal.submitted" else None
    if (
        isinstance(provider, dict)
        and provider.get("country") == "FR"
        and provider.get("legal_form") == "company"
        and provider.get("registration") is None
    ):
        errors.append(
            {
                "loc": "data.provider.registration",
                "msg": (
                    "a company established in France prints its legal form, share capital "
                    "and RCS city on its invoices: send registration {form, share_capital, "
                    "rcs_city}"
                ),
                "type": "missing",
            }
        )
    if isinstance(provider, dict) and isinstance(provider.get("address"), dict):
        country, where = provider.get("country"), provider["address"].get("country")
        if isinstance(where, str) and where != country:
            errors.append(
                {
                    "loc": "data.provider.address.country",
                    "msg": f"the address is in {where}, the provider's country is {country}",
                    "type": "value_error",
                }
            )
    return errors


def _checked_vat(proposal: ProposalSubmitted) -> ProposalSubmitted:
    """The provider's VAT regime and number follow where it is established (domain.vat): a
    franchise claimed abroad, an EU provider without a valid VAT number, a French number of
    another SIREN are 422s; a valid number is kept in its compact form."""
    provider = proposal.provider
    try:
        vat_regime(provider.country, provider.vat_franchise)
    except DomainError as exc:
        raise _invalid_provider("vat_franchise", str(exc)) from None
    try:
        number = provider_vat_number(
            provider.country,
            provider.siren,
            provider.vat_number,
            vat_franchise=provider.vat_franchise,
        )
    except DomainError as exc:
        raise _invalid_provider("vat_number", str(exc)) from None
    if provider.vat_number is None or number == provider.vat_number:
        return proposal
    compact = provider.model_copy(update={"vat_number": number})
    return proposal.model_copy(update={"provider": compact})


def _invalid_provider(field: str, message: str) -> InvalidEvent:
    return InvalidEvent(
        "the data of a 'proposal.submitted' event is invalid",
        errors=[{"loc": f"data.provider.{field}", "msg": message, "type": "value_error"}],
    )


def _siren_errors(model: BaseModel, loc: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Luhn-check every `siren` / `*_siren` field of a payload, nested models included."""
    errors: list[dict[str, Any]] = []
    for name, value in model:
        if isinstance(value, BaseModel):
            errors += _siren_errors(value, (*loc, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    errors += _siren_errors(item, (*loc, name, index))
        elif isinstance(value, str) and (name == "siren" or name.endswith("_siren")):
            try:
                validate_siren(value)
            except InvalidIdentifier as exc:
                errors.append(
                    {"loc": ".".join(map(str, (*loc, name))), "msg": str(exc), "type": "siren"}
                )
    return errors


def _date_errors(model: BaseModel, loc: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """A 422 error for every date or timestamp of a payload outside DATE_RANGE."""
    errors: list[dict[str, Any]] = []
    first, last = DATE_RANGE
    for name, value in model:
        if isinstance(value, BaseModel):
            errors += _date_errors(value, (*loc, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    errors += _date_errors(item, (*loc, name, index))
        elif isinstance(value, date):
            day = value.date() if isinstance(value, datetime) else value
            if not first <= day <= last:
                errors.append(
                    {
                        "loc": ".".join(map(str, (*loc, name))),
                        "msg": f"{value.isoformat()} is not between {first} and {last}",
                        "type": "value_error",
                    }
                )
    return errors
