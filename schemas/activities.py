"""Activity names and their one-model-in, one-model-out contracts.

Workflows call activities by these names so that the workflow sandbox never imports the
database or SMTP libraries that implement them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import ProposalSubmitted

RECORD_PROPOSAL = "record_proposal"
DELIVER_OUTBOX = "deliver_outbox"


class RecordProposalInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    occurred_at: datetime
    proposal: ProposalSubmitted


class TransitionResult(BaseModel):
    """What a lifecycle transition wrote: the outbox keys to deliver next."""

    applied: bool = Field(description="False when this transition had already been written.")
    outbox_keys: list[str] = Field(default_factory=list)


class DeliverOutboxInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    keys: list[str]


class DeliverOutboxResult(BaseModel):
    sent: int = 0
    already_sent: int = 0
