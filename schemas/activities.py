"""Activity names and their one-model-in, one-model-out contracts.

Workflows call activities by these names so that the workflow sandbox never imports the
database or SMTP libraries that implement them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.compliance import ProviderRef
from schemas.events import DocumentUploaded, ProposalSubmitted


class RecordProposalInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    occurred_at: datetime
    proposal: ProposalSubmitted


class TransitionResult(BaseModel):
    """What a lifecycle transition wrote: the outbox keys to deliver next."""

    applied: bool = Field(description="False when this transition had already been written.")
    outbox_keys: list[str] = Field(default_factory=list)


class FailedTransition(BaseModel):
    """A transition whose write failed for good (`DataRefused`): what the timeline and the
    ops alert say of it. `key` is the failed transition's own; `reason` the refusal, which
    names what was refused but no value."""

    model_config = ConfigDict(frozen=True)

    mission_id: str
    key: str
    kind: str
    at: datetime
    reason: str


class SignalInput(BaseModel):
    """A signal to a workflow's current run: its id, the signal's name and its payload (the
    receiving handler's model, dumped to JSON)."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    signal: str
    payload: dict[str, Any]


class IssueDocumentsInput(BaseModel):
    """The validated month whose files (BPF, invoice as Factur-X) to render and store."""

    model_config = ConfigDict(frozen=True)

    mission_id: str
    month: str
    at: datetime = Field(description="the validation's instant: dates an ops alert's row")


class IssueDocumentsResult(BaseModel):
    written: list[str] = Field(default_factory=list, description="file names stored now")
    outbox_keys: list[str] = Field(
        default_factory=list, description="the ops alert of a document that cannot be issued"
    )


class DeliverOutboxInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    keys: list[str]


class DeliverOutboxResult(BaseModel):
    sent: int = 0
    already_sent: int = 0
    refused: list[str] = []
    """Outbox keys the SMTP server refused for good: recorded on their rows for ops."""


# --- Provider legal documents (the provider compliance workflow `provider-<SIREN>`) ---------


ExpiryStage = Literal["reminder", "expired"]


class RecordDocumentUploadInput(BaseModel):
    """A `document.uploaded` the provider workflow took: the `legal_documents` row, under
    review. `expires_on` is the resolved expiry (domain.documents.expires_on)."""

    model_config = ConfigDict(frozen=True)

    document: DocumentUploaded
    expires_on: date
    uploaded_at: datetime
    provider: ProviderRef | None = Field(
        default=None, description="what the workflow knows of the provider, if anything"
    )
    mission_ids: list[str] = Field(
        default_factory=list, description="watching missions: a timeline row for each"
    )


class RecordDocumentReviewInput(BaseModel):
    """A `document.reviewed`: the review row, the document's status, the provider's email."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    provider_siren: str
    accepted: bool
    comment: str | None = None
    reviewed_at: datetime = Field(description="workflow time: the review row's key")
    mission_ids: list[str] = Field(default_factory=list)


class RecordDocumentExpiryInput(BaseModel):
    """An accepted document one month before its expiry (`reminder`) or on it (`expired`:
    the row becomes expired). `notify` False records it without emailing the provider (the
    document was replaced, or accepted when already expired)."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    provider_siren: str
    stage: ExpiryStage
    at: datetime = Field(description="workflow time of the transition")
    notify: bool = True
    mission_ids: list[str] = Field(default_factory=list)


def expiry_email_key(document_id: str, stage: ExpiryStage) -> str:
    """Outbox key of an expiry email, also kept in the workflow's `reminders_sent`."""
    return f"document.expiry:{document_id}:{stage}"
