"""A provider's compliance on a date and what is missing (domain/compliance.py)."""

from __future__ import annotations

from datetime import date

from domain.compliance import compliance_status
from schemas.compliance import DocumentState, DocumentView, MissingReason
from schemas.enums import DocumentKind, LegalForm

SIREN = "200780963"
ON = date(2027, 3, 1)


def doc(
    kind: DocumentKind, expires: date, status: str = DocumentState.ACCEPTED, **extra: str
) -> DocumentView:
    return DocumentView(
        document_id=f"{kind}-{expires}",
        kind=kind,
        issued_on=date(2027, 1, 2),
        expires_on=expires,
        file_ref="f",
        status=status,
        **extra,
    )


ALL_VALID = [
    doc(DocumentKind.URSSAF_VIGILANCE, date(2027, 7, 2)),
    doc(DocumentKind.KBIS, date(2027, 4, 2)),
    doc(DocumentKind.SWORN_STATEMENT, date(2027, 7, 2)),
    doc(DocumentKind.FOREIGN_WORKERS_LIST, date(2027, 7, 2)),
]


def test_compliant_until_the_first_document_lapses() -> None:
    status = compliance_status(SIREN, LegalForm.COMPANY, ALL_VALID, ON)
    assert status.compliant and status.missing == []
    assert status.valid_until == date(2027, 4, 2)


def test_what_is_missing_says_why_and_an_expired_document_shows_expired() -> None:
    documents = [
        *ALL_VALID[:3],
        doc(DocumentKind.FOREIGN_WORKERS_LIST, date(2027, 2, 1)),
        doc(
            DocumentKind.FOREIGN_WORKERS_LIST,
            date(2027, 9, 1),
            DocumentState.REJECTED,
            comment="illisible",
        ),
    ]
    status = compliance_status(SIREN, LegalForm.COMPANY, documents, ON)
    assert not status.compliant and status.valid_until is None
    (missing,) = status.missing
    assert (missing.status, missing.comment) == (MissingReason.REJECTED, "illisible")
    assert status.documents[3].status == DocumentState.EXPIRED

    under_review = [
        *documents,
        doc(DocumentKind.FOREIGN_WORKERS_LIST, date(2027, 9, 2), DocumentState.UNDER_REVIEW),
    ]
    (missing,) = compliance_status(SIREN, LegalForm.COMPANY, under_review, ON).missing
    assert missing.status is MissingReason.UNDER_REVIEW


def test_nothing_uploaded_is_missing_every_requirement() -> None:
    status = compliance_status(SIREN, LegalForm.AUTO_ENTREPRENEUR, [], ON)
    assert [m.status for m in status.missing] == [MissingReason.MISSING] * 4
    assert "Sirene" in status.missing[1].requirement
