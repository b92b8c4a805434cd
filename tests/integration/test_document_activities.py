"""The provider document activities against PostgreSQL and the SMTP sink: each transition is
one transaction, and running it again (a retry after the commit) writes each row once, queues
each email once and sends it once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mailer import Mailer, message_id_for
from activities.registry import Activities
from db.engine import create_engine
from db.models import DocumentReview, EmailOutbox, LegalDocument, MissionEvent, Provider
from schemas.activities import (
    DeliverOutboxInput,
    RecordDocumentExpiryInput,
    RecordDocumentReviewInput,
    RecordDocumentUploadInput,
    TransitionResult,
)
from schemas.compliance import ProviderRef
from schemas.enums import DocumentKind
from schemas.events import DocumentUploaded
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.support.waits import mails, naming, own

ISSUED = date(2026, 11, 2)
EXPIRES = date(2027, 1, 31)
AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@pytest_asyncio.fixture
async def activities(stack_settings: Settings) -> AsyncIterator[Activities]:
    built = Activities(
        create_engine(stack_settings.database_url), Mailer(stack_settings), settings=stack_settings
    )
    yield built
    await built.close()


def _siren() -> str:
    return f"{uuid.uuid4().int % 10**9:09d}"


async def _provider(engine: AsyncEngine, email: str = "paul@durand-conseil.example") -> str:
    """A provider as `proposal.submitted` records it."""
    siren = _siren()
    async with engine.begin() as conn:
        await conn.execute(
            insert(Provider).values(
                siren=siren,
                name="Durand Conseil",
                email=email,
                country="FR",
                legal_form="company",
            )
        )
    return siren


def _upload(siren: str, **changes: Any) -> RecordDocumentUploadInput:
    document = DocumentUploaded(
        document_id=f"DOC-{uuid.uuid4().hex[:10]}",
        provider_siren=siren,
        kind=DocumentKind.KBIS,
        issued_on=ISSUED,
        file_ref="s3://docs/kbis.pdf",
    )
    return RecordDocumentUploadInput(
        document=document.model_copy(update=changes),
        expires_on=EXPIRES,
        uploaded_at=AT,
        mission_ids=["M-1", "M-2"],
    )


async def _run(fn: Any, arg: Any) -> TransitionResult:
    result = await ActivityEnvironment().run(fn, arg)
    assert isinstance(result, TransitionResult)
    return result


async def _count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        stmt = select(func.count()).select_from(model).where(*where)
        return int((await conn.execute(stmt)).scalar_one())


async def _scalar(engine: AsyncEngine, stmt: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()


async def test_upload_twice_writes_one_row_and_refuses_other_content(
    activities: Activities, db_engine: AsyncEngine
) -> None:
    siren = await _provider(db_engine)
    upload = _upload(siren)
    doc_id = upload.document.document_id
    record = activities.documents.record_document_upload

    assert await _run(record, upload) == TransitionResult(applied=True)
    assert await _run(record, upload) == TransitionResult(applied=False)

    assert await _count(db_engine, LegalDocument, LegalDocument.document_id == doc_id) == 1
    row = select(LegalDocument.status, LegalDocument.expires_on).where(
        LegalDocument.document_id == doc_id
    )
    async with db_engine.connect() as conn:
        assert (await conn.execute(row)).one() == ("under_review", EXPIRES)
    timeline = MissionEvent.idempotency_key.like(f"document.uploaded:{doc_id}:%")
    assert await _count(db_engine, MissionEvent, timeline) == 2  # one per watching mission

    other = upload.model_copy(
        update={"document": upload.document.model_copy(update={"file_ref": "s3://docs/new.pdf"})}
    )
    with pytest.raises(ApplicationError) as refused:
        await _run(record, other)
    assert refused.value.non_retryable
    assert "already exists with other content" in refused.value.message
    assert "file_ref" in refused.value.message
    assert await _count(db_engine, LegalDocument, LegalDocument.document_id == doc_id) == 1


async def test_upload_before_any_proposal_creates_a_minimal_provider(
    activities: Activities, db_engine: AsyncEngine
) -> None:
    unknown, known = _siren(), _siren()
    record = activities.documents.record_document_upload
    await _run(record, _upload(unknown))
    ref = ProviderRef(siren=known, name="Martin SAS", email="contact@martin.example")
    await _run(record, _upload(known).model_copy(update={"provider": ref}))

    rows = select(Provider.siren, Provider.name, Provider.email, Provider.country).where(
        Provider.siren.in_([unknown, known])
    )
    async with db_engine.connect() as conn:
        found = {row.siren: tuple(row)[1:] for row in await conn.execute(rows)}
    assert found == {
        unknown: (f"SIREN {unknown}", "", "ZZ"),
        known: ("Martin SAS", "contact@martin.example", "ZZ"),
    }


async def test_review_twice_writes_one_review_and_sends_the_comment_once(
    activities: Activities, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    siren = await _provider(db_engine)
    upload = _upload(siren)
    doc_id = upload.document.document_id
    await _run(activities.documents.record_document_upload, upload)
    review = RecordDocumentReviewInput(
        document_id=doc_id,
        provider_siren=siren,
        accepted=False,
        comment="Kbis de plus de 3 mois",
        reviewed_at=AT + timedelta(hours=1),
        mission_ids=["M-1"],
    )

    first = await _run(activities.documents.record_document_review, review)
    again = await _run(activities.documents.record_document_review, review)
    assert first == TransitionResult(applied=True, outbox_keys=[f"document.rejected:{doc_id}"])
    assert again == TransitionResult(applied=False, outbox_keys=first.outbox_keys)

    assert await _count(db_engine, DocumentReview, DocumentReview.document_id == doc_id) == 1
    status = select(LegalDocument.status).where(LegalDocument.document_id == doc_id)
    assert await _scalar(db_engine, status) == "rejected"
    key = EmailOutbox.outbox_key == f"document.rejected:{doc_id}"
    assert await _count(db_engine, EmailOutbox, key) == 1
    assert await _count(db_engine, MissionEvent, MissionEvent.mission_id == "M-1") >= 1

    for _ in range(2):
        await ActivityEnvironment().run(
            activities.outbox.deliver_outbox, DeliverOutboxInput(keys=first.outbox_keys)
        )
    [mail] = await mails(smtp_sink, naming(message_id_for(f"document.rejected:{doc_id}")), 1)
    assert mail.rcpt_tos == ("paul@durand-conseil.example",)
    assert mail.subject == "Document refusé : extrait Kbis"
    assert "Motif du refus : Kbis de plus de 3 mois" in mail.text()
    assert "colonne Commentaire" in mail.text()
    assert "émis le 02/11/2026" in mail.text()
    assert len(own(smtp_sink, message_id_for(f"document.rejected:{doc_id}"))) == 1


async def test_expiry_reminder_and_expired_recorded_once(
    activities: Activities, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    siren = await _provider(db_engine)
    upload = _upload(siren)
    doc_id = upload.document.document_id
    docs = activities.documents
    await _run(docs.record_document_upload, upload)
    await _run(
        docs.record_document_review,
        RecordDocumentReviewInput(
            document_id=doc_id, provider_siren=siren, accepted=True, reviewed_at=AT
        ),
    )

    def expiry(stage: str, notify: bool = True) -> RecordDocumentExpiryInput:
        return RecordDocumentExpiryInput(
            document_id=doc_id,
            provider_siren=siren,
            stage=stage,
            at=AT + timedelta(days=30),
            notify=notify,
            mission_ids=["M-1"],
        )

    reminder_key = f"document.expiry:{doc_id}:reminder"
    assert await _run(docs.record_document_expiry, expiry("reminder")) == TransitionResult(
        applied=True, outbox_keys=[reminder_key]
    )
    assert await _run(docs.record_document_expiry, expiry("reminder")) == TransitionResult(
        applied=False, outbox_keys=[reminder_key]
    )
    expired_key = f"document.expiry:{doc_id}:expired"
    assert await _run(docs.record_document_expiry, expiry("expired")) == TransitionResult(
        applied=True, outbox_keys=[expired_key]
    )
    assert await _run(docs.record_document_expiry, expiry("expired")) == TransitionResult(
        applied=False, outbox_keys=[expired_key]
    )
    status = select(LegalDocument.status).where(LegalDocument.document_id == doc_id)
    assert await _scalar(db_engine, status) == "expired"
    for key in (reminder_key, expired_key):
        assert await _count(db_engine, EmailOutbox, EmailOutbox.outbox_key == key) == 1
    for kind in ("document.expiring", "document.expired"):
        timeline = MissionEvent.idempotency_key == f"{kind}:{doc_id}:M-1"
        assert await _count(db_engine, MissionEvent, timeline) == 1

    for _ in range(2):
        await ActivityEnvironment().run(
            activities.outbox.deliver_outbox,
            DeliverOutboxInput(keys=[reminder_key, expired_key]),
        )
    needle = message_id_for(f"document.expiry:{doc_id}")[1 : -len("@contracting.localhost>")]
    reminder, expired = await mails(smtp_sink, naming(needle), 2)
    assert len(own(smtp_sink, needle)) == 2
    assert reminder.subject == "Votre extrait Kbis expire le 31/01/2027"
    assert "ne sera plus valable à compter du 31/01/2027" in reminder.text()
    assert expired.subject == "Votre extrait Kbis a expiré"
    assert "n'est plus valable depuis le 31/01/2027" in expired.text()


async def test_silent_expiry_and_unknown_email_queue_no_email(
    activities: Activities, db_engine: AsyncEngine
) -> None:
    docs = activities.documents
    # A replaced document expires without an email.
    siren = await _provider(db_engine)
    upload = _upload(siren)
    doc_id = upload.document.document_id
    await _run(docs.record_document_upload, upload)
    await _run(
        docs.record_document_review,
        RecordDocumentReviewInput(
            document_id=doc_id, provider_siren=siren, accepted=True, reviewed_at=AT
        ),
    )
    silent = RecordDocumentExpiryInput(
        document_id=doc_id, provider_siren=siren, stage="expired", at=AT, notify=False
    )
    assert await _run(docs.record_document_expiry, silent) == TransitionResult(applied=True)
    expiry_mails = EmailOutbox.outbox_key.like(f"document.expiry:{doc_id}:%")
    assert await _count(db_engine, EmailOutbox, expiry_mails) == 0

    # A provider known only from its uploads (no email yet): the rejection is recorded, the
    # email waits for nobody.
    unknown = _siren()
    upload = _upload(unknown)
    await _run(docs.record_document_upload, upload)
    rejected = await _run(
        docs.record_document_review,
        RecordDocumentReviewInput(
            document_id=upload.document.document_id,
            provider_siren=unknown,
            accepted=False,
            comment="Illisible",
            reviewed_at=AT,
        ),
    )
    assert rejected == TransitionResult(applied=True)

    # A review of a document the database does not have: refused, not retried.
    with pytest.raises(ApplicationError) as refused:
        await _run(
            docs.record_document_review,
            RecordDocumentReviewInput(
                document_id="DOC-nowhere", provider_siren=siren, accepted=True, reviewed_at=AT
            ),
        )
    assert refused.value.non_retryable
    assert refused.value.type == "UnknownDocument"
