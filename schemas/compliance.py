"""The contract between the provider compliance workflow `provider-<SIREN>` and the missions
that wait on it (legal verification) or watch it (a mission in progress)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import DocumentKind, LegalForm


class DocumentState(StrEnum):
    """Values of `DocumentView.status` (the same as the `legal_documents.status` column)."""

    UNDER_REVIEW = "under_review"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


class MissingReason(StrEnum):
    """Values of `MissingDocument.status`: why a requirement is not met."""

    MISSING = "missing"
    UNDER_REVIEW = "under_review"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ProviderRef(BaseModel):
    """Who the provider is: enough to mail them and to know which documents they need."""

    model_config = ConfigDict(frozen=True)

    siren: str
    name: str
    email: str
    legal_form: LegalForm = LegalForm.COMPANY


class ProviderComplianceInput(BaseModel):
    """Starts (or continues-as-new) `provider-<SIREN>`; `state` is None on the first run."""

    siren: str
    provider: ProviderRef | None = None
    state: ProviderComplianceState | None = None
    kbis_max_age_days: int | None = Field(
        default=None,
        description="settings.kbis_max_age_days; None: domain.documents.DEFAULT_KBIS_MAX_AGE_DAYS",
    )
    continue_as_new_after_events: int | None = Field(
        default=None,
        description="history length that triggers continue-as-new; None: the workflow's default",
    )
    undelivered_emails: list[str] = Field(
        default_factory=list,
        description="outbox keys the previous run had not finished delivering",
    )


class WatchRequest(BaseModel):
    """A mission asks to be signalled whenever the provider's compliance changes."""

    mission_id: str
    provider: ProviderRef


class DocumentView(BaseModel):
    """One legal document as support sees it."""

    document_id: str
    kind: DocumentKind
    issued_on: date
    expires_on: date
    file_ref: str
    status: str = Field(description="under_review | accepted | rejected | expired")
    comment: str | None = Field(default=None, description="the reviewer's reason when rejected")
    uploaded_at: datetime | None = None
    reviewed_at: datetime | None = None


class MissingDocument(BaseModel):
    requirement: str = Field(description="what is required, in words")
    accepted_kinds: list[DocumentKind]
    reason: str = Field(
        description="missing | under_review | rejected: <comment> | expired on <date>"
    )
    status: MissingReason = MissingReason.MISSING
    document_id: str | None = Field(
        default=None, description="the document the reason is about (under review, rejected…)"
    )
    comment: str | None = Field(default=None, description="the reviewer's comment when rejected")
    expired_on: date | None = None


class ComplianceStatus(BaseModel):
    """Is the provider compliant on `on`, and if not, what is missing or expired."""

    siren: str
    on: date
    compliant: bool
    missing: list[MissingDocument] = Field(default_factory=list)
    valid_until: date | None = Field(
        default=None, description="first day a document the compliance rests on expires"
    )
    documents: list[DocumentView] = Field(default_factory=list)


class ProviderComplianceState(BaseModel):
    """Everything the workflow carries across continue-as-new."""

    provider: ProviderRef | None = None
    documents: list[DocumentView] = Field(default_factory=list)
    watchers: list[str] = Field(default_factory=list, description="mission ids")
    reminders_sent: list[str] = Field(
        default_factory=list, description="keys of expiry emails already sent"
    )
    published: ComplianceStatus | None = Field(
        default=None,
        description="the last status signalled to the watchers (without its documents)",
    )


ProviderComplianceInput.model_rebuild()
