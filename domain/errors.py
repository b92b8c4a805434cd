"""Errors raised by the business rules.

Every rule violation is a `DomainError` (a `ValueError`), so callers can turn any of them into
a non-retryable `ApplicationError` in one place; the message is written for the person who
has to fix the input, not for a developer.
"""

from __future__ import annotations


class DomainError(ValueError):
    """An input breaks a business rule; the message says which one and what to do."""


class IneligibleOffer(DomainError):
    """The payment offer cannot be used for this contract or provider."""


class InvalidAmount(DomainError):
    """A money amount, rate or number of days is not acceptable (negative, not finite...)."""


class InvalidCra(DomainError):
    """A CRA (activity report) breaks a rule: days, month, correction lines."""


class InvalidIdentifier(DomainError):
    """A SIREN, SIRET or IBAN is malformed or fails its checksum."""
