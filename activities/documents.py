"""Activities of the provider compliance workflow: each transition is one transaction.

Every row is keyed by a business key and written with `ON CONFLICT DO NOTHING`, so a retried
activity (the worker died after the commit) writes nothing twice and queues no email twice:

- `legal_documents` by `document_id`; `document_reviews` by (`document_id`, `reviewed_at`),
  `reviewed_at` being the workflow's time, identical on every attempt;
- outbox rows by `document.rejected:<id>`, `document.accepted:<id>`,
  `document.expiry:<id>:reminder|expired`;
- timeline rows (`mission_events`) by `document.<event>:<document id>:<mission id>`, one per
  mission watching the provider at the time: the timeline is per mission, and a provider
  event concerns every mission that waits on or runs with that provider. An event with no
  watching mission has no timeline row (the `legal_documents` and `document_reviews` rows are
  its record).

The provider's email and name come from the `providers` row (the latest `proposal.submitted`
wins). A provider may upload documents before any proposal: the `legal_documents.provider_siren`
foreign key then needs a row, so a minimal one is inserted — from the workflow's ProviderRef
when it has one, else with placeholders (name "SIREN <siren>", an empty email, country "ZZ",
the ISO 3166 user-assigned code for "unknown") — which the next `proposal.submitted` overwrites.
No email can go to a provider whose email is unknown: that transition queues none and logs a
warning (the platform still shows the review and its comment).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.transitions import queue_email, record_timeline
from db.models import DocumentReview, DocumentStatus, EmailOutbox, LegalDocument, Provider
from schemas.activities import (
    RecordDocumentExpiryInput,
    RecordDocumentReviewInput,
    RecordDocumentUploadInput,
    TransitionResult,
    expiry_email_key,
)
from schemas.enums import DocumentKind, LegalForm
from schemas.names import RECORD_DOCUMENT_EXPIRY, RECORD_DOCUMENT_REVIEW, RECORD_DOCUMENT_UPLOAD

KIND_LABELS: dict[DocumentKind, str] = {
    DocumentKind.URSSAF_VIGILANCE: "attestation de vigilance URSSAF",
    DocumentKind.KBIS: "extrait Kbis",
    DocumentKind.SIRENE_SITUATION: "avis de situation au répertoire Sirene",
    DocumentKind.SWORN_STATEMENT: "attestation sur l'honneur",
    DocumentKind.FOREIGN_WORKERS_LIST: "liste des salariés étrangers",
}

UNKNOWN_COUNTRY = "ZZ"
"""ISO 3166-1 user-assigned code, commonly "unknown": placeholder of a provider row created
from a document upload, before any proposal told us the provider's country."""


class DocumentActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name=RECORD_DOCUMENT_UPLOAD)
    async def record_document_upload(self, inp: RecordDocumentUploadInput) -> TransitionResult:
        """The `legal_documents` row, under review, and the watching missions' timelines.

        The same document_id with other content is refused (non-retryable): a document is
        immutable once uploaded."""
        doc = inp.document
        async with self._sessions.begin() as session:
            await self._ensure_provider(session, inp)
            inserted = await session.execute(
                insert(LegalDocument)
                .values(
                    document_id=doc.document_id,
                    provider_siren=doc.provider_siren,
                    kind=doc.kind,
                    issued_on=doc.issued_on,
                    expires_on=inp.expires_on,
                    file_ref=doc.file_ref,
                    status=DocumentStatus.UNDER_REVIEW,
                )
                .on_conflict_do_nothing(index_elements=[LegalDocument.document_id])
                .returning(LegalDocument.document_id)
            )
            applied = inserted.scalar_one_or_none() is not None
            if not applied:
                await _check_same_document(session, inp)
            for mission_id in inp.mission_ids:
                await record_timeline(
                    session,
                    key=f"document.uploaded:{doc.document_id}:{mission_id}",
                    mission_id=mission_id,
                    kind="document.uploaded",
                    at=inp.uploaded_at,
                    data={
                        "document_id": doc.document_id,
                        "provider_siren": doc.provider_siren,
                        "kind": doc.kind.value,
                        "expires_on": inp.expires_on.isoformat(),
                    },
                )
        activity.logger.info("document %s recorded (new: %s)", doc.document_id, applied)
        return TransitionResult(applied=applied)

    async def _ensure_provider(self, session: AsyncSession, inp: RecordDocumentUploadInput) -> None:
        siren = inp.document.provider_siren
        ref = inp.provider if inp.provider is not None and inp.provider.siren == siren else None
        await session.execute(
            insert(Provider)
            .values(
                siren=siren,
                name=ref.name if ref else f"SIREN {siren}",
                email=ref.email if ref else "",
                country=UNKNOWN_COUNTRY,
                legal_form=ref.legal_form if ref else LegalForm.COMPANY,
            )
            .on_conflict_do_nothing(index_elements=[Provider.siren])
        )

    @activity.defn(name=RECORD_DOCUMENT_REVIEW)
    async def record_document_review(self, inp: RecordDocumentReviewInput) -> TransitionResult:
        """The review row, the document's status and the provider's email (with the
        reviewer's comment when rejected)."""
        async with self._sessions.begin() as session:
            doc = await _locked_document(session, inp.document_id, inp.provider_siren)
            inserted = await session.execute(
                insert(DocumentReview)
                .values(
                    document_id=inp.document_id,
                    accepted=inp.accepted,
                    comment=inp.comment,
                    reviewed_at=inp.reviewed_at,
                )
                .on_conflict_do_nothing(
                    index_elements=[DocumentReview.document_id, DocumentReview.reviewed_at]
                )
                .returning(DocumentReview.id)
            )
            applied = inserted.scalar_one_or_none() is not None
            if applied:
                doc.status = DocumentStatus.ACCEPTED if inp.accepted else DocumentStatus.REJECTED
            outcome = "accepted" if inp.accepted else "rejected"
            for mission_id in inp.mission_ids:
                await record_timeline(
                    session,
                    key=f"document.{outcome}:{inp.document_id}:{mission_id}",
                    mission_id=mission_id,
                    kind=f"document.{outcome}",
                    at=inp.reviewed_at,
                    data={
                        "document_id": inp.document_id,
                        "kind": doc.kind.value,
                        "comment": inp.comment,
                    },
                )
            keys = await _mail_provider(
                session,
                doc,
                key=f"document.{outcome}:{inp.document_id}",
                template=f"document_{outcome}",
                comment=inp.comment,
            )
        activity.logger.info("review of document %s recorded (new: %s)", inp.document_id, applied)
        return TransitionResult(applied=applied, outbox_keys=keys)

    @activity.defn(name=RECORD_DOCUMENT_EXPIRY)
    async def record_document_expiry(self, inp: RecordDocumentExpiryInput) -> TransitionResult:
        """One month before expiry: the reminder email. On expiry: the row becomes expired and
        the provider is told. `notify` False records the transition without an email."""
        key = expiry_email_key(inp.document_id, inp.stage)
        async with self._sessions.begin() as session:
            doc = await _locked_document(session, inp.document_id, inp.provider_siren)
            if inp.stage == "expired":
                applied = doc.status == DocumentStatus.ACCEPTED
                if applied:
                    doc.status = DocumentStatus.EXPIRED
            else:
                queued = await session.execute(
                    select(EmailOutbox.id).where(EmailOutbox.outbox_key == key)
                )
                applied = queued.scalar_one_or_none() is None
            kind = "document.expiring" if inp.stage == "reminder" else "document.expired"
            for mission_id in inp.mission_ids:
                await record_timeline(
                    session,
                    key=f"{kind}:{inp.document_id}:{mission_id}",
                    mission_id=mission_id,
                    kind=kind,
                    at=inp.at,
                    data={
                        "document_id": inp.document_id,
                        "kind": doc.kind.value,
                        "expires_on": doc.expires_on.isoformat(),
                        "notified": inp.notify,
                    },
                )
            keys: list[str] = []
            if inp.notify:
                template = "document_expiring" if inp.stage == "reminder" else "document_expired"
                keys = await _mail_provider(session, doc, key=key, template=template)
        activity.logger.info(
            "%s of document %s recorded (new: %s)", inp.stage, inp.document_id, applied
        )
        return TransitionResult(applied=applied, outbox_keys=keys)


async def _check_same_document(session: AsyncSession, inp: RecordDocumentUploadInput) -> None:
    doc = inp.document
    existing = await session.get(LegalDocument, doc.document_id)
    assert existing is not None  # the insert conflicted on it
    fields: tuple[tuple[str, object, object], ...] = (
        ("provider_siren", existing.provider_siren, doc.provider_siren),
        ("kind", existing.kind, doc.kind),
        ("issued_on", existing.issued_on, doc.issued_on),
        ("expires_on", existing.expires_on, inp.expires_on),
        ("file_ref", existing.file_ref, doc.file_ref),
    )
    differences = [f"{name} {old} ≠ {new}" for name, old, new in fields if old != new]
    if differences:
        raise ApplicationError(
            f"document {doc.document_id} already exists with other content "
            f"({', '.join(differences)}); upload a new file under a new document_id",
            type="DocumentConflict",
            non_retryable=True,
        )


async def _locked_document(session: AsyncSession, document_id: str, siren: str) -> LegalDocument:
    doc = await session.get(LegalDocument, document_id, with_for_update=True)
    if doc is None or doc.provider_siren != siren:
        raise ApplicationError(
            f"provider {siren} has no document {document_id} in the database",
            type="UnknownDocument",
            non_retryable=True,
        )
    return doc


async def _mail_provider(
    session: AsyncSession,
    doc: LegalDocument,
    *,
    key: str,
    template: str,
    comment: str | None = None,
) -> list[str]:
    """Queue an email to the provider; none (and a warning) while their email is unknown."""
    provider = await session.get(Provider, doc.provider_siren)
    if provider is None or not provider.email:
        activity.logger.warning(
            "no email address for provider %s: %s not sent", doc.provider_siren, key
        )
        return []
    context: dict[str, Any] = {
        "provider_name": provider.name,
        "document_id": doc.document_id,
        "kind_label": KIND_LABELS[DocumentKind(doc.kind)],
        "issued_on": doc.issued_on,
        "expires_on": doc.expires_on,
        "last_valid_day": _last_valid_day(doc.expires_on),
        "comment": comment,
    }
    await queue_email(
        session,
        key=key,
        mission_id=None,
        recipients=[provider.email],
        template=template,
        context=context,
    )
    return [key]


def _last_valid_day(expires_on: date) -> date:
    """`expires_on` is the first day the document is no longer valid."""
    return date.fromordinal(expires_on.toordinal() - 1)
