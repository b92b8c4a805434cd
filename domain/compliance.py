"""Is a provider compliant on a date, and if not, what is missing and why (D8222-5).

Pure: the provider compliance workflow (workflows/provider.py) holds the documents and asks
here; the missions it tells act on the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from domain.documents import Requirement, is_valid_on, required_documents
from schemas.compliance import (
    ComplianceStatus,
    DocumentState,
    DocumentView,
    MissingDocument,
    MissingReason,
)
from schemas.enums import LegalForm

REVIEWED = frozenset({DocumentState.ACCEPTED, DocumentState.EXPIRED})
"""Statuses of a document a reviewer accepted (an expired document was accepted first)."""


def compliance_status(
    siren: str, legal_form: LegalForm, documents: Sequence[DocumentView], on: date
) -> ComplianceStatus:
    """Compliant iff every requirement has an accepted document valid on `on`; valid until
    the first day one of them lapses (each requirement resting on its longest-lasting
    valid document)."""
    missing: list[MissingDocument] = []
    rests_on: list[date] = []
    for requirement in required_documents(legal_form):
        relevant = [d for d in documents if d.kind in requirement.accepted]
        valid = [
            d.expires_on
            for d in relevant
            if d.status in REVIEWED and is_valid_on(on, d.issued_on, d.expires_on)
        ]
        if valid:
            rests_on.append(max(valid))
        else:
            missing.append(missing_requirement(requirement, relevant, on))
    return ComplianceStatus(
        siren=siren,
        on=on,
        compliant=not missing,
        missing=missing,
        valid_until=min(rests_on) if not missing else None,
        documents=[view_on(doc, on) for doc in documents],
    )


def missing_requirement(
    requirement: Requirement, relevant: Sequence[DocumentView], on: date
) -> MissingDocument:
    """Why a requirement is unmet: a document under review first, else the provider's latest
    document of that requirement (rejected, or expired), else nothing at all."""
    base: dict[str, Any] = {
        "requirement": requirement.name,
        "accepted_kinds": sorted(requirement.accepted),
    }
    under_review = [d for d in relevant if d.status == DocumentState.UNDER_REVIEW]
    if under_review:
        doc = under_review[-1]
        return MissingDocument(
            **base,
            reason="under_review",
            status=MissingReason.UNDER_REVIEW,
            document_id=doc.document_id,
        )
    if relevant:
        doc = relevant[-1]
        if doc.status == DocumentState.REJECTED:
            return MissingDocument(
                **base,
                reason=f"rejected: {doc.comment}",
                status=MissingReason.REJECTED,
                document_id=doc.document_id,
                comment=doc.comment,
            )
        if doc.expires_on <= on:
            return MissingDocument(
                **base,
                reason=f"expired on {doc.expires_on.isoformat()}",
                status=MissingReason.EXPIRED,
                document_id=doc.document_id,
                expired_on=doc.expires_on,
            )
    return MissingDocument(**base, reason="missing", status=MissingReason.MISSING)


def view_on(doc: DocumentView, on: date) -> DocumentView:
    """The document as of `on`: an accepted document is expired from its expiry date."""
    if doc.status not in REVIEWED:
        return doc.model_copy()
    status = DocumentState.EXPIRED if doc.expires_on <= on else DocumentState.ACCEPTED
    return doc.model_copy(update={"status": status})
