"""Renewal and early termination events through the gateway, on the real dev server with the
real worker and PostgreSQL: 202 when applied, 200 for a re-sent event, 409 with the reason
when not applicable, and the explanation of a hidden CRA while a renewal waits."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import MissionTerms
from domain.cra import month_bounds, month_of
from tests.support.factories import envelope
from tests.support.gateway import GatewayTestClient, apply, post, validated_month, view
from tests.support.waits import eventually


async def test_renewal_then_termination_through_the_gateway(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    pid, month = await validated_month(gateway)
    state = (await view(gateway, pid)).state
    new_end = state.end_date + timedelta(days=92)
    renewed_month = month_of(state.end_date + timedelta(days=35))

    requested = envelope(
        "renewal.requested",
        {"mission_id": pid, "new_end_date": new_end.isoformat(), "new_tjm": "700.00"},
    )
    assert (await gateway.post_event(requested)).status_code == 202
    assert (await gateway.post_event(requested)).json()["status"] == "duplicate"
    assert (await view(gateway, pid)).state.stage == "renewal_pending"

    explained = await gateway.http.get(f"/missions/{pid}/explain", params={"month": renewed_month})
    assert explained.status_code == 200, explained.text
    assert "renewal_pending" in explained.text
    assert "attend l'acceptation du prestataire" in explained.text

    refused = await post(gateway, "renewal.validated", mission_id=pid, approver_id="APR-1")
    assert refused.status_code == 409
    assert "this applies when it is accepted" in refused.json()["detail"]

    await apply(gateway, "renewal.accepted", mission_id=pid, payment_offer="express")
    await apply(gateway, "renewal.validated", mission_id=pid, approver_id="APR-1")

    async def renewed() -> bool:
        current = (await view(gateway, pid)).state
        return bool(current.renewals) and current.stage == "in_progress"

    await eventually(renewed, within=20)
    assert (await view(gateway, pid)).state.end_date == new_end
    async with db_engine.connect() as conn:
        versions = (
            await conn.execute(
                select(MissionTerms.version, MissionTerms.tjm, MissionTerms.payment_offer)
                .where(MissionTerms.mission_id == pid)
                .order_by(MissionTerms.version)
            )
        ).all()
    assert [(v.version, str(v.tjm), v.payment_offer) for v in versions][-1] == (
        2,
        "700.00",
        "express",
    )

    # The validated month cannot be cut; a later end date is accepted.
    too_early = await post(
        gateway,
        "mission.terminated",
        mission_id=pid,
        end_date=(month_bounds(month)[1] - timedelta(days=1)).isoformat(),
        reason="budget",
    )
    assert too_early.status_code == 409 and "too early" in too_early.json()["detail"]
    end: date = month_bounds(month)[1] + timedelta(days=10)
    await apply(
        gateway, "mission.terminated", mission_id=pid, end_date=end.isoformat(), reason="budget"
    )
    state = (await view(gateway, pid)).state
    assert state.end_date == end and state.termination is not None
