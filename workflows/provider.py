"""The provider compliance workflow `provider-<SIREN>`: one per provider company, for years.

It holds the provider's legal documents (D8222-5, D8254-2 Code du travail) and their review,
answers "is this provider compliant on date D, and if not, what is missing or expired", tells
every watching mission when that answer changes, and emails the provider one month before a
document expires and again on the expiry date.

- `document.uploaded` and `document.reviewed` are updates: their validators reject what does
  not apply (another provider's document, a document_id reused with other content, a review
  of a document that is not under review) before anything is written, so the gateway answers
  409. A handler returns once its transition is committed (one activity: row, timeline,
  outbox), so after the gateway's 202 the `legal_documents` row exists. Emails are delivered
  afterwards, in the background: an SMTP outage never holds an update (or the gateway)
  waiting, nor the compliance signalled to the missions, nor a continue-as-new (the next run
  delivers what was still on its way).
- Missions `watch` (and `unwatch`); each watcher gets the current `ComplianceStatus` at once
  and again on every change: a review, an upload (what is missing changes), a document that
  expires or becomes valid (at midnight, Europe/Paris), a new legal form.
- Expiry emails: one durable timer at a time, to the next deadline among all documents; any
  update or signal wakes the loop, which plans again.
- The history stays small: continue-as-new after `CONTINUE_AS_NEW_AFTER_EVENTS` history
  events (or when the server suggests it), carrying `ProviderComplianceState`; documents
  expired for more than `PRUNE_AFTER` are dropped from it (they stay in the database).

Europe/Paris comes from `domain.clock` (the EU summer-time rule): `zoneinfo` objects are
restricted proxies inside the workflow sandbox and cannot be used as a tzinfo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

from domain import documents as rules
from domain.clock import paris_date, paris_instant
from domain.compliance import REVIEWED, compliance_status
from domain.errors import DomainError
from schemas.activities import (
    ExpiryStage,
    RecordDocumentExpiryInput,
    RecordDocumentReviewInput,
    RecordDocumentUploadInput,
    TransitionResult,
    expiry_email_key,
)
from schemas.compliance import (
    ComplianceStatus,
    DocumentState,
    DocumentView,
    ProviderComplianceInput,
    ProviderComplianceState,
    WatchRequest,
)
from schemas.enums import DocumentKind, LegalForm
from schemas.events import DocumentReviewed, DocumentUploaded
from schemas.ids import mission_workflow_id, provider_workflow_id
from schemas.names import (
    COMPLIANCE_CHANGED,
    COMPLIANCE_QUERY,
    DOCUMENT_REVIEWED,
    DOCUMENT_UPLOADED,
    PROVIDER_WORKFLOW,
    RECORD_DOCUMENT_EXPIRY,
    RECORD_DOCUMENT_REVIEW,
    RECORD_DOCUMENT_UPLOAD,
    STATE_QUERY,
    UNWATCH,
    WATCH,
)
from workflows.effects import Courier, root_message
from workflows.options import db_activity
from workflows.timers import Deadline
from workflows.validation import refuse

CONTINUE_AS_NEW_AFTER_EVENTS = 500
"""History length after which a run continues as new (a few dozen transitions: ~1 year)."""

PRUNE_AFTER = timedelta(days=365)
"""Documents expired for longer than this leave the workflow state (not the database)."""

NOTICE_TIME = time(8, 0)
"""Expiry emails go out at 08:00, Europe/Paris, on their day."""

REMINDER: ExpiryStage = "reminder"
EXPIRED: ExpiryStage = "expired"

# Application error types of the update validators and handlers (the gateway answers 409,
# or 404 for an unknown document).
UNKNOWN_DOCUMENT = "UnknownDocument"


@dataclass(frozen=True)
class _Notice:
    due: datetime
    document: DocumentView
    stage: ExpiryStage

    @property
    def key(self) -> str:
        return expiry_email_key(self.document.document_id, self.stage)


@workflow.defn(name=PROVIDER_WORKFLOW)
class ProviderComplianceWorkflow:
    @workflow.init
    def __init__(self, inp: ProviderComplianceInput) -> None:
        self._deadline = Deadline("next document deadline")
        self._siren = inp.siren
        self._state = (
            inp.state.model_copy(deep=True) if inp.state is not None else ProviderComplianceState()
        )
        if inp.provider is not None:
            self._state.provider = inp.provider
        self._kbis_max_age_days = inp.kbis_max_age_days or rules.DEFAULT_KBIS_MAX_AGE_DAYS
        self._continue_after = inp.continue_as_new_after_events or CONTINUE_AS_NEW_AFTER_EVENTS
        # Handlers that run activities take turns; the state changes only after a commit.
        self._lock = asyncio.Lock()
        self._wake = False
        self._courier = Courier()  # emails go out after the business step, never before it
        self._stale: list[str] = []  # watchers that have not received the current status
        self._handled = 0  # updates, signals and notices handled by this run

    # --- The loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: ProviderComplianceInput) -> None:
        self._courier.deliver(inp.undelivered_emails)  # the previous run's, still on their way
        while True:
            self._wake = False
            await self._record_due_notices()
            await self._publish()  # the missions first: compliance never waits for SMTP
            if self._wake:
                continue  # a handler changed something meanwhile
            if self._continue_as_new_due():
                # Every handler done, no e-mail attempt abandoned mid-send.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and self._courier.quiet()
                )
                if self._wake:
                    continue
                self._prune()
                workflow.continue_as_new(
                    ProviderComplianceInput(
                        siren=self._siren,
                        state=self._state,
                        kbis_max_age_days=inp.kbis_max_age_days,
                        continue_as_new_after_events=inp.continue_as_new_after_events,
                        undelivered_emails=self._courier.undelivered(),
                    )
                )
            await self._sleep_until_next_deadline()

    async def _sleep_until_next_deadline(self) -> None:
        # The deadline came, or an update woke it: the loop handles both.
        await self._deadline.wait(self._next_deadline(), lambda: self._wake)

    def _next_deadline(self) -> datetime | None:
        """The earliest future instant at which something happens: an expiry email is due,
        or a document's validity starts or ends (compliance may change at that midnight)."""
        now = workflow.now()
        candidates = [notice.due for notice in self._pending_notices()]
        for doc in self._state.documents:
            if doc.status in REVIEWED:
                candidates.extend(
                    paris_instant(day, time(0)) for day in (doc.issued_on, doc.expires_on)
                )
        future = [instant for instant in candidates if instant > now]
        return min(future, default=None)

    def _continue_as_new_due(self) -> bool:
        if self._handled == 0:
            return False  # never continue a run that did nothing: no continue-as-new loop
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._continue_after
        )

    def _prune(self) -> None:
        cutoff = self._today() - PRUNE_AFTER
        kept = [
            doc
            for doc in self._state.documents
            if doc.status == DocumentState.UNDER_REVIEW or doc.expires_on > cutoff
        ]
        keys = {
            expiry_email_key(doc.document_id, stage)
            for doc in kept
            for stage in (REMINDER, EXPIRED)
        }
        self._state.documents = kept
        self._state.reminders_sent = [key for key in self._state.reminders_sent if key in keys]

    # --- Expiry emails -------------------------------------------------------------------------

    def _pending_notices(self) -> Iterator[_Notice]:
        """Expiry emails not sent yet, each with the instant it is due (possibly past).

        A reminder is only pending until the expiry itself is due, and not for a document
        that another accepted document of an interchangeable kind replaces on its expiry date.
        """
        now = workflow.now()
        sent = self._state.reminders_sent
        for doc in self._state.documents:
            if doc.status not in REVIEWED:
                continue
            expired_at = paris_instant(doc.expires_on, NOTICE_TIME)
            if expiry_email_key(doc.document_id, EXPIRED) in sent:
                continue
            if (
                expiry_email_key(doc.document_id, REMINDER) not in sent
                and now < expired_at
                and not self._replaced(doc)
            ):
                yield _Notice(
                    paris_instant(rules.reminder_date(doc.expires_on), NOTICE_TIME), doc, REMINDER
                )
            yield _Notice(expired_at, doc, EXPIRED)

    def _replaced(self, doc: DocumentView) -> bool:
        """True when another accepted document of an interchangeable kind is valid on the day
        `doc` expires (so the provider needs no reminder and no expiry notice)."""
        kinds = self._interchangeable(doc.kind)
        return any(
            other.document_id != doc.document_id
            and other.status in REVIEWED
            and other.kind in kinds
            and rules.is_valid_on(doc.expires_on, other.issued_on, other.expires_on)
            for other in self._state.documents
        )

    def _interchangeable(self, kind: DocumentKind) -> frozenset[DocumentKind]:
        kinds = frozenset({kind})
        for requirement in rules.required_documents(self._legal_form()):
            if kind in requirement.accepted:
                kinds |= requirement.accepted
        return kinds

    async def _record_due_notices(self) -> None:
        async with self._lock:
            while True:
                now = workflow.now()
                due = sorted(
                    (n for n in self._pending_notices() if n.due <= now), key=lambda n: n.due
                )
                if not due:
                    return
                await self._record_notice(due[0], now)

    async def _record_notice(self, notice: _Notice, now: datetime) -> None:
        doc = notice.document
        # An expiry notice for a document accepted when already expired, or replaced, is
        # recorded (the row becomes expired) without emailing the provider.
        notify = not self._replaced(doc) and (
            notice.stage == REMINDER or doc.reviewed_at is None or doc.reviewed_at < notice.due
        )
        try:
            result = await db_activity(
                RECORD_DOCUMENT_EXPIRY,
                RecordDocumentExpiryInput(
                    document_id=doc.document_id,
                    provider_siren=self._siren,
                    stage=notice.stage,
                    at=now,
                    notify=notify,
                    mission_ids=list(self._state.watchers),
                ),
                TransitionResult,
            )
        except ActivityError as exc:
            # Not retryable (the row is gone?): log it for ops, never loop on it.
            workflow.logger.error(
                "expiry %s of document %s not recorded: %s",
                notice.stage,
                doc.document_id,
                root_message(exc),
            )
            result = TransitionResult(applied=False)
        self._state.reminders_sent.append(notice.key)
        if notice.stage == EXPIRED:
            doc.status = DocumentState.EXPIRED
        self._courier.deliver(result.outbox_keys)
        self._handled += 1

    # --- Telling the watchers --------------------------------------------------------------

    async def _publish(self) -> None:
        """Signal the current status to every watcher if it changed, and to new watchers."""
        status = self._status(self._today())
        summary = status.model_copy(update={"documents": []})
        published = self._state.published
        if published is None or _fingerprint(published) != _fingerprint(summary):
            self._state.published = summary
            self._stale = list(self._state.watchers)
        while self._stale:
            targets = list(self._stale)
            self._stale.clear()
            delivered = await asyncio.gather(*(self._signal(m, status) for m in targets))
            for mission_id, ok in zip(targets, delivered, strict=True):
                if not ok:
                    self._drop_watcher(mission_id)

    async def _signal(self, mission_id: str, status: ComplianceStatus) -> bool:
        handle = workflow.get_external_workflow_handle(mission_workflow_id(mission_id))
        try:
            await handle.signal(COMPLIANCE_CHANGED, status)
        except FailureError as exc:
            workflow.logger.warning(
                "mission %s no longer watches provider %s: %s",
                mission_id,
                self._siren,
                root_message(exc),
            )
            return False
        return True

    def _drop_watcher(self, mission_id: str) -> None:
        if mission_id in self._state.watchers:
            self._state.watchers.remove(mission_id)
        if mission_id in self._stale:
            self._stale.remove(mission_id)

    # --- Updates ------------------------------------------------------------------------------

    @workflow.update(name=DOCUMENT_UPLOADED)
    async def document_uploaded(self, upload: DocumentUploaded) -> DocumentView:
        """The document goes to review; re-sending the same document is a no-op."""
        async with self._lock:
            expires = self._check_upload(upload)  # again: another update may have run
            existing = self._find(upload.document_id)
            if existing is not None:
                return existing.model_copy()
            now = workflow.now()
            result = await self._transition(
                RECORD_DOCUMENT_UPLOAD,
                RecordDocumentUploadInput(
                    document=upload,
                    expires_on=expires,
                    uploaded_at=now,
                    provider=self._state.provider,
                    mission_ids=list(self._state.watchers),
                ),
            )
            view = DocumentView(
                document_id=upload.document_id,
                kind=upload.kind,
                issued_on=upload.issued_on,
                expires_on=expires,
                file_ref=upload.file_ref,
                status=DocumentState.UNDER_REVIEW,
                uploaded_at=now,
            )
            self._state.documents.append(view)
            self._changed(result)
            return view.model_copy()

    @document_uploaded.validator
    def _validate_upload(self, upload: DocumentUploaded) -> None:
        self._check_upload(upload)

    def _check_upload(self, upload: DocumentUploaded) -> date:
        """The resolved expiry date, or a rejection the gateway turns into a 409."""
        if upload.provider_siren != self._siren:
            raise refuse(
                f"document {upload.document_id} is for provider {upload.provider_siren}, "
                f"not {self._siren} (workflow {provider_workflow_id(self._siren)})"
            )
        try:
            expires = rules.expires_on(
                upload.kind,
                upload.issued_on,
                upload.expires_on,
                kbis_max_age_days=self._kbis_max_age_days,
            )
        except DomainError as exc:
            raise refuse(f"document {upload.document_id}: {exc}") from exc
        existing = self._find(upload.document_id)
        if existing is not None:
            differences = [
                f"{name} {old} ≠ {new}"
                for name, old, new in (
                    ("kind", existing.kind.value, upload.kind.value),
                    ("issued_on", existing.issued_on, upload.issued_on),
                    ("expires_on", existing.expires_on, expires),
                    ("file_ref", existing.file_ref, upload.file_ref),
                )
                if old != new
            ]
            if differences:
                raise refuse(
                    f"document {upload.document_id} was already uploaded with other content "
                    f"({', '.join(differences)}); upload a new file under a new document_id"
                )
        return expires

    @workflow.update(name=DOCUMENT_REVIEWED)
    async def document_reviewed(self, review: DocumentReviewed) -> DocumentView:
        """Accepted, or rejected with the comment the provider sees (and receives by email)."""
        async with self._lock:
            doc = self._check_review(review)  # again: another review may have run meanwhile
            now = workflow.now()
            result = await self._transition(
                RECORD_DOCUMENT_REVIEW,
                RecordDocumentReviewInput(
                    document_id=doc.document_id,
                    provider_siren=self._siren,
                    accepted=review.accepted,
                    comment=review.comment,
                    reviewed_at=now,
                    mission_ids=list(self._state.watchers),
                ),
            )
            doc.status = DocumentState.ACCEPTED if review.accepted else DocumentState.REJECTED
            doc.comment = review.comment
            doc.reviewed_at = now
            self._changed(result)
            return doc.model_copy()

    @document_reviewed.validator
    def _validate_review(self, review: DocumentReviewed) -> None:
        self._check_review(review)

    def _check_review(self, review: DocumentReviewed) -> DocumentView:
        doc = self._find(review.document_id)
        if doc is None:
            raise refuse(
                f"provider {self._siren} has no document {review.document_id}",
                type=UNKNOWN_DOCUMENT,
            )
        if doc.status != DocumentState.UNDER_REVIEW:
            when = f" on {doc.reviewed_at.isoformat()}" if doc.reviewed_at else ""
            raise refuse(
                f"document {doc.document_id} is not under review: it was already "
                f"{doc.status}{when}; the provider must upload a new document"
            )
        return doc

    async def _transition(self, activity: str, arg: Any) -> TransitionResult:
        try:
            result = await db_activity(activity, arg, TransitionResult)
        except ActivityError as exc:
            # Fails the update (the caller gets the reason), not the workflow.
            raise refuse(root_message(exc)) from exc
        return result

    def _changed(self, result: TransitionResult) -> None:
        self._courier.deliver(result.outbox_keys)
        self._handled += 1
        self._wake = True

    # --- Signals and queries -----------------------------------------------------------------

    @workflow.signal(name=WATCH)
    def watch(self, request: WatchRequest) -> None:
        """Signal `mission-<id>` the current status now and on every change."""
        if request.provider.siren == self._siren:
            self._state.provider = request.provider  # the latest proposal's data wins
        else:
            workflow.logger.warning(
                "mission %s watches provider %s with the data of provider %s: ignored",
                request.mission_id,
                self._siren,
                request.provider.siren,
            )
        if request.mission_id not in self._state.watchers:
            self._state.watchers.append(request.mission_id)
        if request.mission_id not in self._stale:
            self._stale.append(request.mission_id)
        self._handled += 1
        self._wake = True

    @workflow.signal(name=UNWATCH)
    def unwatch(self, mission_id: str) -> None:
        self._drop_watcher(mission_id)
        self._handled += 1
        self._wake = True

    @workflow.query(name=COMPLIANCE_QUERY)
    def compliance(self, on: date | None = None) -> ComplianceStatus:
        """Compliance on `on` (default: today in Europe/Paris)."""
        return self._status(on or self._today())

    @workflow.query(name=STATE_QUERY)
    def state(self) -> ProviderComplianceState:
        return self._state

    # --- Compliance ------------------------------------------------------------------------------

    def _status(self, on: date) -> ComplianceStatus:
        return compliance_status(self._siren, self._legal_form(), self._state.documents, on)

    def _legal_form(self) -> LegalForm:
        provider = self._state.provider
        return provider.legal_form if provider is not None else LegalForm.COMPANY

    def _find(self, document_id: str) -> DocumentView | None:
        return next((d for d in self._state.documents if d.document_id == document_id), None)

    def _today(self) -> date:
        return paris_date(workflow.now())


def _fingerprint(status: ComplianceStatus) -> Any:
    """What a watcher acts on: compliance, what is missing and why, and until when."""
    return status.model_dump(mode="json", include={"compliant", "missing", "valid_until"})
