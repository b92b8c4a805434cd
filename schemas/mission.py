"""Inputs, outputs and state of the mission workflow (one model in, one model out)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import MissionStage, ProposalStatus
from schemas.events import ProposalSubmitted


class MissionInput(BaseModel):
    """Starts `mission-<proposal_id>`: the `proposal.submitted` event that created it."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    occurred_at: datetime
    proposal: ProposalSubmitted


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    detail: str = ""


class MissionState(BaseModel):
    """What the `state` query answers: the mission as ops and support see it."""

    mission_id: str
    rfp_id: str
    client_id: str
    provider_siren: str
    stage: MissionStage
    proposal_status: ProposalStatus
    tjm: Decimal
    start_date: date
    end_date: date
    timeline: list[TimelineEntry] = Field(default_factory=list)


class MissionResult(BaseModel):
    """What a finished mission workflow returns."""

    mission_id: str
    stage: MissionStage
