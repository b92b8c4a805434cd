"""Typed search attributes that ops filter missions on in the Temporal UI (DESIGN.md)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MISSION_ID = SearchAttributeKey.for_keyword("MissionId")
RFP_ID = SearchAttributeKey.for_keyword("RfpId")
CLIENT_ID = SearchAttributeKey.for_keyword("ClientId")
PROVIDER_ID = SearchAttributeKey.for_keyword("ProviderId")
MISSION_STAGE = SearchAttributeKey.for_keyword("MissionStage")
PAYMENT_OFFER = SearchAttributeKey.for_keyword("PaymentOffer")
NEXT_PAYOUT_DATE = SearchAttributeKey.for_datetime("NextPayoutDate")
FAILED_TRANSITIONS = SearchAttributeKey.for_keyword_list("FailedTransitions")
"""Kinds of a mission's transitions the database refused for good (ops: find them with
`FailedTransitions IS NOT NULL`)."""

ALL_KEYS = (
    MISSION_ID,
    RFP_ID,
    CLIENT_ID,
    PROVIDER_ID,
    MISSION_STAGE,
    PAYMENT_OFFER,
    NEXT_PAYOUT_DATE,
    FAILED_TRANSITIONS,
)
