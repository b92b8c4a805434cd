"""`GET /missions/{id}/explain` and `contracting mission explain` on the real dev server with
the real worker: why a CRA is not visible, why a payout has not arrived (or when it was paid).
"""

from __future__ import annotations

import json

from temporalio.testing import WorkflowEnvironment

from starter.explain import MissionExplanation
from tests.fixtures.gateway import GatewayTestClient, eventually
from tests.integration.test_gateway_contracting import (
    _contracting,
    apply,
    fresh_siren,
    month_open,
    provider,
    retain,
    submit,
    today,
    until_stage,
)


async def explain(
    gateway: GatewayTestClient, mission_id: str, month: str | None = None
) -> MissionExplanation:
    query = f"?month={month}" if month else ""
    response = await gateway.http.get(f"/missions/{mission_id}/explain{query}")
    assert response.status_code == 200, response.text
    return MissionExplanation.model_validate(response.json())


async def test_cra_not_visible_while_contracting_is_in_progress(
    gateway: GatewayTestClient, dev_server_env: WorkflowEnvironment
) -> None:
    pid = await submit(gateway, provider=provider(fresh_siren()))
    await retain(gateway, pid)
    await until_stage(gateway, pid, "legal_verification")
    month = today().strftime("%Y-%m")

    explained = await explain(gateway, pid, month)
    assert explained.stage == "legal_verification"
    [entry] = explained.months
    assert entry.month == month and not entry.cra_visible
    [reason] = entry.cra
    assert reason.code == "contracting_in_progress"
    assert "la contractualisation est en cours chez le client" in reason.message
    assert entry.payout == []

    code, out, err = await _contracting(dev_server_env, "mission", "explain", pid)
    assert code == 0, err
    assert "la contractualisation est en cours chez le client" in out
    code, out, err = await _contracting(
        dev_server_env, "mission", "explain", pid, "--month", month, "--json"
    )
    assert code == 0, err
    assert MissionExplanation.model_validate(json.loads(out)).months[0].cra[0].code == (
        "contracting_in_progress"
    )

    missing = await gateway.http.get("/missions/P-nope/explain")
    assert missing.status_code == 404
    assert "unknown mission 'P-nope'" in missing.json()["detail"]
    bad = await gateway.http.get(f"/missions/{pid}/explain?month=2026-13")
    assert bad.status_code == 422
    code, out, err = await _contracting(dev_server_env, "mission", "explain", "P-nope")
    assert code == 1 and out == ""
    assert err.startswith("error: unknown mission 'P-nope'")


async def test_flash_payout_explained_after_the_cra_is_validated(
    gateway: GatewayTestClient,
) -> None:
    pid, month = await month_open(gateway, "flash", 7)
    before = (await explain(gateway, pid)).months
    assert [entry.month for entry in before] == [month]
    assert before[0].cra_visible
    assert before[0].payout[0].code == "cra_not_validated"

    await apply(gateway, "cra.submitted", mission_id=pid, month=month, days="1")
    await apply(gateway, "cra.validated", mission_id=pid, month=month, approver_id="APR-1")

    async def payout_known() -> bool:
        entry = (await explain(gateway, pid, month)).months[0]
        return entry.payout_status is not None

    await eventually(payout_known, within=20.0)
    entry = (await explain(gateway, pid, month)).months[0]
    assert entry.cra_status == "validated"
    codes = [reason.code for reason in entry.payout]
    if entry.payout_status == "paid":
        assert codes[-1] == "paid"
    else:
        assert entry.payout_date is not None
        assert "due_date_not_reached" in codes or "payout_overdue" in codes
        dated = [r for r in entry.payout if r.facts.get("payout_date")]
        assert dated and dated[-1].facts["payout_date"] == entry.payout_date.isoformat()
        assert entry.payout_date.strftime("%d/%m/%Y") in dated[-1].message
