"""Legal documents: expiry per kind, reminder one month before, required kinds."""

from datetime import date

import pytest

from domain.documents import (
    expires_on,
    is_valid_on,
    missing_documents,
    reminder_date,
    required_documents,
    vigilance_required,
)
from domain.errors import DomainError
from schemas.enums import DocumentKind as K
from schemas.enums import LegalForm


@pytest.mark.parametrize(
    ("kind", "issued", "expected"),
    [
        (K.URSSAF_VIGILANCE, date(2026, 1, 15), date(2026, 7, 15)),
        (K.URSSAF_VIGILANCE, date(2025, 8, 31), date(2026, 2, 28)),  # clamped to month end
        (K.SWORN_STATEMENT, date(2026, 3, 1), date(2026, 9, 1)),
        (K.FOREIGN_WORKERS_LIST, date(2026, 3, 1), date(2026, 9, 1)),
        (K.KBIS, date(2026, 1, 15), date(2026, 4, 15)),  # 90 days
        (K.SIRENE_SITUATION, date(2026, 1, 15), date(2026, 4, 15)),  # same rule as the Kbis
    ],
)
def test_expiry_per_kind(kind, issued, expected):
    assert expires_on(kind, issued) == expected


def test_kbis_age_is_configurable():
    assert expires_on(K.KBIS, date(2026, 1, 15), kbis_max_age_days=30) == date(2026, 2, 14)


def test_an_earlier_printed_expiry_wins_a_later_one_does_not():
    assert expires_on(K.URSSAF_VIGILANCE, date(2026, 1, 15), date(2026, 5, 1)) == date(2026, 5, 1)
    assert expires_on(K.URSSAF_VIGILANCE, date(2026, 1, 15), date(2027, 1, 1)) == date(2026, 7, 15)
    with pytest.raises(DomainError, match="must be after the issue date"):
        expires_on(K.KBIS, date(2026, 1, 15), date(2026, 1, 15))


def test_validity_window_excludes_the_expiry_day():
    expiry = expires_on(K.URSSAF_VIGILANCE, date(2026, 1, 15))
    assert is_valid_on(date(2026, 7, 14), date(2026, 1, 15), expiry)
    assert not is_valid_on(date(2026, 7, 15), date(2026, 1, 15), expiry)
    assert not is_valid_on(date(2026, 1, 14), date(2026, 1, 15), expiry)


@pytest.mark.parametrize(
    ("expiry", "reminder"),
    [
        (date(2026, 7, 15), date(2026, 6, 15)),
        (date(2026, 3, 31), date(2026, 2, 28)),
        (date(2028, 3, 31), date(2028, 2, 29)),  # leap year
        (date(2026, 5, 31), date(2026, 4, 30)),
        (date(2026, 1, 10), date(2025, 12, 10)),
    ],
)
def test_reminder_one_month_before_clamped_to_month_end(expiry, reminder):
    assert reminder_date(expiry) == reminder


def test_company_needs_a_kbis():
    required = required_documents(LegalForm.COMPANY)
    assert [set(r.accepted) for r in required] == [
        {K.URSSAF_VIGILANCE},
        {K.KBIS},
        {K.SWORN_STATEMENT},
        {K.FOREIGN_WORKERS_LIST},
    ]
    missing = missing_documents(LegalForm.COMPANY, {K.URSSAF_VIGILANCE, K.SIRENE_SITUATION})
    assert [set(r.accepted) for r in missing] == [
        {K.KBIS},
        {K.SWORN_STATEMENT},
        {K.FOREIGN_WORKERS_LIST},
    ]


def test_auto_entrepreneur_may_send_a_sirene_notice_or_a_kbis():
    all_but_registration = {K.URSSAF_VIGILANCE, K.SWORN_STATEMENT, K.FOREIGN_WORKERS_LIST}
    for proof in (K.SIRENE_SITUATION, K.KBIS):
        assert missing_documents(LegalForm.AUTO_ENTREPRENEUR, all_but_registration | {proof}) == ()
    missing = missing_documents(LegalForm.AUTO_ENTREPRENEUR, all_but_registration)
    assert [set(r.accepted) for r in missing] == [{K.SIRENE_SITUATION, K.KBIS}]


def test_vigilance_threshold():
    from decimal import Decimal as D

    assert vigilance_required(D("5000.00"))
    assert not vigilance_required(D("4999.99"))
