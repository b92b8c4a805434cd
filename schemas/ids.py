"""Readable workflow ids derived from business keys: re-sending an event finds the same one."""

from __future__ import annotations


def mission_workflow_id(proposal_id: str) -> str:
    return f"mission-{proposal_id}"


def cra_workflow_id(mission_id: str, month: str) -> str:
    return f"cra-{mission_id}-{month}"


def provider_workflow_id(siren: str) -> str:
    return f"provider-{siren}"


def payout_workflow_id(mission_id: str, month: str) -> str:
    return f"payout-{mission_id}-{month}"
