"""The longest values the contract accepts go through the gateway and are written; one more
character is a 422 naming the field (issue 12 point 2).

On the real dev server with the real worker and PostgreSQL: a proposal whose ids are as long
as the contract allows (100 characters), events whose `event_id` has 200, a purchase order
number of 100 characters and an `rfp.closed` favourite address of 254: every timeline row and
outbox row is written (the composed keys, longer than their column, shortened by
`db.keys.fit_key`), and the mission records no failed transition.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import EmailOutbox, MissionEvent, PurchaseOrder
from schemas.limits import EMAIL_LENGTH, EVENT_ID_LENGTH, ID_LENGTH, KEY_LENGTH, REFERENCE_LENGTH
from tests.support.factories import proposal_submitted
from tests.support.gateway import GatewayTestClient, post, provider, view
from tests.support.waits import eventually


def _longest(prefix: str, length: int) -> str:
    """A unique value of exactly `length` characters."""
    head = f"{prefix}-{uuid.uuid4().hex}-"
    return head + "x" * (length - len(head))


async def _accepted(gateway: GatewayTestClient, event_type: str, **data: Any) -> None:
    response = await post(gateway, event_type, _longest("evt", EVENT_ID_LENGTH), **data)
    assert response.status_code == 202, f"{event_type}: {response.text}"


async def test_the_longest_values_are_accepted_and_written(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    pid, rfp = _longest("P", ID_LENGTH), _longest("RFP", ID_LENGTH)
    data = proposal_submitted(pid, rfp_id=rfp, provider=provider())
    await _accepted(gateway, "proposal.submitted", **data)
    for event_type, extra in (
        ("proposal.read", {}),
        ("proposal.rated", {"interesting": True}),
        ("proposal.retained", {}),
    ):
        await _accepted(gateway, event_type, proposal_id=pid, **extra)

    too_long = _longest("PO", REFERENCE_LENGTH + 1)
    response = await post(gateway, "purchase_order.confirmed", proposal_id=pid, po_number=too_long)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == ["data.po_number"]
    po_number = _longest("PO", REFERENCE_LENGTH)
    await _accepted(gateway, "purchase_order.confirmed", proposal_id=pid, po_number=po_number)
    favourite = _longest("fav", EMAIL_LENGTH - len("@acme.fr")) + "@acme.fr"
    await _accepted(gateway, "rfp.closed", rfp_id=rfp, favourited_by=[favourite])

    async def written() -> bool:
        async with db_engine.connect() as connection:
            kinds = (
                await connection.execute(
                    sa.select(MissionEvent.kind).where(MissionEvent.mission_id == pid)
                )
            ).scalars()
            return {"purchase_order.confirmed", "rfp.closed"} <= set(kinds)

    await eventually(written, within=20)
    async with db_engine.connect() as connection:
        keys = list(
            (
                await connection.execute(
                    sa.select(MissionEvent.idempotency_key).where(MissionEvent.mission_id == pid)
                )
            ).scalars()
        )
        orders = list(
            (
                await connection.execute(
                    sa.select(PurchaseOrder.po_number).where(PurchaseOrder.mission_id == pid)
                )
            ).scalars()
        )
        favourites = list(
            (
                await connection.execute(
                    sa.select(EmailOutbox.outbox_key).where(
                        sa.literal(favourite) == sa.any_(EmailOutbox.recipients)
                    )
                )
            ).scalars()
        )
    assert orders == [po_number]
    assert len(keys) >= 6 and all(len(key) <= KEY_LENGTH for key in keys), keys
    assert any("#" in key for key in keys), "no composed key was long enough to be fitted"
    assert len(favourites) == 1 and len(favourites[0]) <= KEY_LENGTH
    assert (await view(gateway, pid)).state.failed_transitions == []
