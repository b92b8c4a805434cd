"""The gateway's timing settings (issue 12 point 1): a claim's lease must outlast one Temporal
call, or a live but slow dispatch would be taken over by every redelivery."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from settings import Settings


def test_a_lease_not_longer_than_the_rpc_timeout_is_refused_naming_both_variables() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(gateway_rpc_timeout_seconds=10, gateway_claim_lease_seconds=10)
    message = str(refused.value)
    assert "CONTRACTING_GATEWAY_CLAIM_LEASE_SECONDS (10)" in message
    assert "CONTRACTING_GATEWAY_RPC_TIMEOUT_SECONDS (10)" in message
