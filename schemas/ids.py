"""Readable workflow ids derived from business keys: re-sending an event finds the same one."""

from __future__ import annotations


def fan_out_update_id(event_id: str, proposal_id: str) -> str:
    """The update id of an event the gateway fans out to several missions (`rfp.closed`)."""
    return f"{event_id}:{proposal_id}"


def fanned_out_event_id(update_id: str, proposal_id: str) -> str:
    """The platform event id behind `fan_out_update_id` (the update id itself otherwise)."""
    return update_id.removesuffix(f":{proposal_id}")


def mission_workflow_id(proposal_id: str) -> str:
    return f"mission-{proposal_id}"


def proposal_of_mission_workflow(workflow_id: str) -> str:
    """The proposal id behind `mission_workflow_id`."""
    return workflow_id.removeprefix("mission-")


def cra_workflow_id(mission_id: str, month: str) -> str:
    return f"cra-{mission_id}-{month}"


def provider_workflow_id(siren: str) -> str:
    return f"provider-{siren}"


def payout_workflow_id(mission_id: str, month: str) -> str:
    return f"payout-{mission_id}-{month}"
