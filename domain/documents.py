"""Provider legal documents: how long each stays valid, when to remind, which are required.

D8222-5 Code du travail (vigilance duty, contracts of 5,000 € excl. VAT or more): an URSSAF
vigilance certificate less than 6 months old; a registration proof; a sworn statement about
undeclared work; the list of foreign employees (D8254-2) — renewed every 6 months.

Registration proof: a Kbis less than 3 months old (market practice, `kbis_max_age_days`,
default 90 days) or, for an auto-entrepreneur, the "avis de situation au répertoire Sirene".
The Sirene notice proves the same thing as the Kbis, so it follows the same age rule; an
auto-entrepreneur may send either.

`expires_on` is the first day a document is no longer acceptable: it is valid on the days
from its issue date to the day before.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from domain.calendar import add_months
from domain.errors import DomainError
from schemas.enums import DocumentKind, LegalForm

DEFAULT_KBIS_MAX_AGE_DAYS = 90
"""settings.kbis_max_age_days."""

VALIDITY_MONTHS = 6
"""URSSAF certificate age limit and renewal period of the D8222-5 statements."""

REMINDER_MONTHS_BEFORE = 1

VIGILANCE_THRESHOLD = Decimal("5000.00")
"""R8222-1 Code du travail: the vigilance duty applies from this contract amount excl. VAT."""

_REGISTRATION_PROOFS = frozenset({DocumentKind.KBIS, DocumentKind.SIRENE_SITUATION})


def expires_on(
    kind: DocumentKind,
    issued_on: date,
    given: date | None = None,
    *,
    kbis_max_age_days: int = DEFAULT_KBIS_MAX_AGE_DAYS,
) -> date:
    """First day the document is no longer acceptable.

    `given` is an expiry date printed on the document, if any: the earlier of it and the
    age rule wins (a document cannot be kept longer than the rule allows).
    """
    kind = DocumentKind(kind)
    if kbis_max_age_days <= 0:
        raise DomainError(f"kbis_max_age_days must be positive, got {kbis_max_age_days}")
    if kind in _REGISTRATION_PROOFS:
        by_rule = issued_on + timedelta(days=kbis_max_age_days)
    else:
        by_rule = add_months(issued_on, VALIDITY_MONTHS)
    if given is not None:
        if given <= issued_on:
            raise DomainError(
                f"expiry date {given.isoformat()} must be after the issue date "
                f"{issued_on.isoformat()}"
            )
        return min(given, by_rule)
    return by_rule


def is_valid_on(day: date, issued_on: date, expires: date) -> bool:
    """True when a document issued on `issued_on` and expiring on `expires` is valid on `day`."""
    return issued_on <= day < expires


def reminder_date(expires: date) -> date:
    """When to email the provider: one calendar month before expiry, clamped to month end.

    Expiring on 31 March → reminded on 28 (or 29) February.
    """
    return add_months(expires, -REMINDER_MONTHS_BEFORE)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One document the provider must keep valid; any kind in `accepted` satisfies it."""

    name: str
    accepted: frozenset[DocumentKind]


def required_documents(legal_form: LegalForm) -> tuple[Requirement, ...]:
    """What a provider of `legal_form` must provide before a mission may start."""
    legal_form = LegalForm(legal_form)
    if legal_form is LegalForm.AUTO_ENTREPRENEUR:
        registration = Requirement(
            "avis de situation au répertoire Sirene (ou extrait Kbis)", _REGISTRATION_PROOFS
        )
    else:
        registration = Requirement("extrait Kbis", frozenset({DocumentKind.KBIS}))
    return (
        Requirement("attestation de vigilance URSSAF", frozenset({DocumentKind.URSSAF_VIGILANCE})),
        registration,
        Requirement("attestation sur l'honneur", frozenset({DocumentKind.SWORN_STATEMENT})),
        Requirement("liste des salariés étrangers", frozenset({DocumentKind.FOREIGN_WORKERS_LIST})),
    )


def missing_documents(
    legal_form: LegalForm, valid_kinds: Collection[DocumentKind]
) -> tuple[Requirement, ...]:
    """Requirements that none of the provider's currently valid documents satisfy."""
    return tuple(
        req for req in required_documents(legal_form) if req.accepted.isdisjoint(valid_kinds)
    )


def vigilance_required(contract_amount_excl_vat: Decimal) -> bool:
    """True when the contract reaches the 5,000 € threshold of the vigilance duty."""
    return contract_amount_excl_vat >= VIGILANCE_THRESHOLD
