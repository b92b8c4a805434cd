"""`GET /missions/{id}/explain` and `contracting mission explain` on the real dev server with
the real worker: why a CRA is not visible, why a payout has not arrived (or when it was paid).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from db.engine import session_factory
from domain.payouts import compute_payout
from schemas.enums import PaymentOffer
from schemas.ids import cra_workflow_id, mission_workflow_id
from schemas.mission import MissionView
from settings import Settings
from starter.support.explain import MissionExplanation, explain_mission, render_explanation
from starter.support.missions import mission_view, render_mission
from tests.fixtures.gateway import _outbox_settled
from tests.fixtures.postgres import free_port
from tests.support.factories import new_siren
from tests.support.gateway import (
    TEST_SUPPORT_TOKEN,
    GatewayTestClient,
    file_and_validate,
    month_open,
    provider,
    read_headers,
    retain,
    run_contracting,
    submit,
    today,
    until_stage,
)
from tests.support.waits import eventually


async def explain(
    gateway: GatewayTestClient, mission_id: str, month: str | None = None
) -> MissionExplanation:
    query = f"?month={month}" if month else ""
    response = await gateway.http.get(f"/missions/{mission_id}/explain{query}")
    assert response.status_code == 200, response.text
    return MissionExplanation.model_validate(response.json())


async def test_cra_not_visible_while_contracting_is_in_progress(
    gateway: GatewayTestClient,
    dev_server_env: WorkflowEnvironment,
    stack_settings: Settings,
    db_engine: AsyncEngine,
) -> None:
    pid = await submit(gateway, provider=provider(new_siren()))
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

    ledger = stack_settings.database_url
    code, out, err = await run_contracting(
        dev_server_env, "mission", "explain", pid, database_url=ledger
    )
    assert code == 0, err
    assert "la contractualisation est en cours chez le client" in out
    code, out, err = await run_contracting(
        dev_server_env, "mission", "explain", pid, "--month", month, "--json", database_url=ledger
    )
    assert code == 0, err
    assert MissionExplanation.model_validate(json.loads(out)).months[0].cra[0].code == (
        "contracting_in_progress"
    )

    # Temporal out of reach (no client): the ledger still answers, and says so.
    sessions = session_factory(db_engine)
    offline = await mission_view(sessions, None, pid)
    assert offline.live is not None and offline.live.status == "unavailable"
    assert offline.state.stage == "legal_verification" and offline.missing["client"]
    offline_explained = await explain_mission(sessions, None, pid, [month])
    assert offline_explained.months[0].cra[0].code == "contracting_in_progress"

    missing = await gateway.http.get("/missions/P-nope/explain")
    assert missing.status_code == 404
    assert "unknown mission 'P-nope'" in missing.json()["detail"]
    bad = await gateway.http.get(f"/missions/{pid}/explain?month=2026-13")
    assert bad.status_code == 422
    code, out, err = await run_contracting(
        dev_server_env, "mission", "explain", "P-nope", database_url=ledger
    )
    assert code == 3 and out == ""  # not found
    assert err.startswith("error: unknown mission 'P-nope'")
    # The ledger out of reach: one line that says which, exit status 4, no traceback.
    closed = f"postgresql+psycopg://contracting@127.0.0.1:{free_port()}/contracting"
    code, out, err = await run_contracting(
        dev_server_env, "mission", "explain", pid, database_url=closed
    )
    assert code == 4 and out == "", err
    assert err.startswith("error: cannot") and "PostgreSQL" in err and "Traceback" not in err


async def test_flash_payout_explained_after_the_cra_is_validated(
    gateway: GatewayTestClient,
    dev_server_env: WorkflowEnvironment,
    db_engine: AsyncEngine,
) -> None:
    """Validated two months ago (the business date comes from occurred_at): the Flash payout,
    three business days later, is past, so it is paid, and `explain` says so with the date.
    Then its workflows are deleted (as the namespace's retention would): `mission show`,
    `explain` and the read routes answer the same from the ledger, and say the workflow is
    gone (issue 13 point 1)."""
    pid, month = await month_open(gateway, "flash", 7, months_ago=2)
    before = (await explain(gateway, pid, month)).months
    assert [entry.month for entry in before] == [month]
    assert before[0].cra_visible
    assert before[0].payout[0].code == "cra_not_validated"

    validated_on = await file_and_validate(gateway, pid, month)
    expected = compute_payout(PaymentOffer.FLASH, validated_on).payout_date
    assert expected is not None and expected < today()

    async def paid() -> bool:
        entry = (await explain(gateway, pid, month)).months[0]
        return entry.payout_status == "paid"

    await eventually(paid, within=20.0)
    entry = (await explain(gateway, pid, month)).months[0]
    assert entry.cra_status == "validated"
    assert entry.payout_date == expected
    assert entry.payout[-1].code == "paid"

    while_running = await explain(gateway, pid, month)
    assert while_running.live is not None and while_running.live.status == "running"
    now = datetime.now(UTC)  # its e-mails all sent: nothing left for a deleted workflow
    await eventually(lambda: _outbox_settled(db_engine, [pid], now), within=20)
    # The mission and its CRA cycle, which `show` and `explain` used to query. (The payout's
    # facts are the ledger's too; a just-terminated payout is deleted only once its close is
    # visible, up to tens of seconds on a loaded dev server: left out to keep this short.)
    await delete_workflows(dev_server_env, mission_workflow_id(pid), cra_workflow_id(pid, month))

    support = read_headers(TEST_SUPPORT_TOKEN)
    shown = await gateway.http.get(f"/missions/{pid}", headers=support)
    assert shown.status_code == 200, shown.text
    view = MissionView.model_validate(shown.json())
    assert view.live is not None and view.live.status == "gone"
    assert view.state.stage == "in_progress" and view.state.validated_months == [month]
    assert view.state.legal.contract is not None and view.state.legal.purchase_order
    assert any(entry.kind == "cra.validated" for entry in view.state.timeline)
    after = await gateway.http.get(f"/missions/{pid}/explain?month={month}", headers=support)
    assert after.status_code == 200, after.text
    gone = MissionExplanation.model_validate(after.json())
    assert gone.live is not None and gone.live.status == "gone"
    assert gone.months == while_running.months  # the ledger holds every fact explain needs
    assert gone.months[0].payout[-1].code == "paid"
    listed = await gateway.http.get(f"/missions/{pid}/documents", headers=support)
    assert {doc["kind"] for doc in listed.json()["documents"]} == {"bpf", "invoice"}

    # What `contracting mission show` and `explain` print (the same code path, in-process
    # here: the CLI's own run is test_contracting_mission_show's and the first test's).
    shown_text = render_mission(view)
    assert "plus dans Temporal" in shown_text and "CRA validé" in shown_text
    explained_text = render_explanation(gone)
    assert "plus dans Temporal" in explained_text and month in explained_text


async def delete_workflows(env: WorkflowEnvironment, *workflow_ids: str) -> None:
    """Delete the workflows (what the namespace's retention does to closed ones): a running
    one is terminated first; the deletion is asynchronous (the server deletes a just-closed
    execution once its close is visible), so it is asked again until Temporal no longer
    knows them."""
    client = env.client
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test: its history goes, as past the namespace's retention")

    async def deleted() -> bool:
        remaining = 0
        for workflow_id in workflow_ids:
            try:
                await client.workflow_service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(
                        namespace=client.namespace,
                        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                    )
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue
            remaining += 1
        return remaining == 0

    # The server deletes in the background (its deletion queue, behind the work of every
    # other test of this worker on the same dev server): 20 s was not always enough.
    await eventually(deleted, within=60.0)
