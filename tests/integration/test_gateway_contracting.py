"""Every event type of the contracting stage through the gateway, on the real dev server with
the real worker, PostgreSQL and SMTP sink; `GET /missions/{id}` and `contracting mission show`.

Each test uses its own provider (a fresh SIREN), so the provider's `provider-<SIREN>`
workflow, its documents and its compliance belong to that test alone.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from db.models import ProcessedEvent
from schemas import search_attributes as sa
from schemas.compliance import ComplianceStatus
from schemas.mission import MissionView
from schemas.names import COMPLIANCE_QUERY
from settings import Settings
from tests.support.factories import (
    envelope,
    new_siren,
)
from tests.support.gateway import (
    PARIS,
    GatewayTestClient,
    apply,
    post,
    provider,
    refused,
    retain,
    run_contracting,
    submit,
    today,
    until_stage,
    upload,
    view,
)
from tests.support.waits import eventually

REJECTION = "Attestation illisible : le code de sécurité n'apparaît pas"


async def _recorded(engine: AsyncEngine, event_id: str) -> int:
    async with engine.connect() as conn:
        stmt = select(func.count()).where(ProcessedEvent.event_id == event_id)
        return int((await conn.execute(stmt)).scalar_one())


# --- The proposal stage ---------------------------------------------------------------------


async def test_proposal_events_apply_in_order_and_show_in_the_mission(
    gateway: GatewayTestClient, dev_server_env: WorkflowEnvironment
) -> None:
    pid = await submit(gateway)
    qm_at = datetime.now(PARIS).replace(microsecond=0) + timedelta(days=3)

    await apply(gateway, "proposal.read", proposal_id=pid)
    assert (await view(gateway, pid)).state.proposal_status == "read"
    await apply(gateway, "proposal.rated", proposal_id=pid, interesting=True)
    await apply(gateway, "proposal.updated", proposal_id=pid, tjm="680.00")
    await apply(gateway, "qualification_meeting.scheduled", proposal_id=pid, at=qm_at.isoformat())
    qualification = await view(gateway, pid)
    assert qualification.state.stage == "qualification"
    assert qualification.state.qualification_meeting_at == qm_at
    assert qualification.missing == {"provider": [], "client": []}
    assert qualification.documents is None
    await apply(gateway, "qualification_meeting.held", proposal_id=pid)
    await apply(gateway, "proposal.retained", proposal_id=pid)

    mission = await view(gateway, pid)
    assert mission.state.stage == "legal_verification"
    assert mission.state.proposal_status == "retained"
    assert str(mission.state.tjm) == "680.00"
    assert mission.state.qualification_meeting_held
    kinds = [entry.kind for entry in mission.state.timeline]
    assert kinds == [
        "proposal.submitted",
        "proposal.read",
        "proposal.rated",
        "proposal.updated",
        "qualification_meeting.scheduled",
        "qualification_meeting.held",
        "proposal.retained",
    ]
    description = await dev_server_env.client.get_workflow_handle(f"mission-{pid}").describe()
    assert description.typed_search_attributes.get(sa.MISSION_STAGE) == "legal_verification"


async def test_not_applicable_events_are_409_with_the_reason_and_record_nothing(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    pid = await submit(gateway)
    await retain(gateway, pid)

    tjm = envelope("proposal.updated", {"proposal_id": pid, "tjm": "700.00"})
    await refused(await gateway.post_event(tjm), "cannot change the TJM", "already decided")
    assert await _recorded(db_engine, tjm["event_id"]) == 0
    await refused(await post(gateway, "proposal.read", proposal_id=pid), "mark the proposal read")
    await refused(
        await post(gateway, "proposal.cancelled", proposal_id=pid, reason="trop tard"),
        "cancel the proposal",
    )
    unchanged = (await view(gateway, pid)).state
    assert (str(unchanged.tjm), unchanged.proposal_status) == ("650.00", "retained")

    # The client's side of legal verification before retention.
    early = await submit(gateway)
    await refused(
        await post(gateway, "purchase_order.confirmed", proposal_id=early, po_number="PO-1"),
        "cannot confirm a purchase order",
        "legal verification",
    )
    # A fixed-date offer for a provider outside France.
    foreign = await submit(gateway, provider=provider(country="FI", name="Nordic Data Oy"))
    await retain(gateway, foreign)
    await refused(
        await post(
            gateway,
            "contract.signed",
            proposal_id=foreign,
            signed_on=today().isoformat(),
            payment_offer="flash",
            special_conditions_ref="CP-1",
        ),
        "offer 'flash' is not available",
        "outside France",
        "back_to_back",
    )
    assert (await view(gateway, foreign)).state.legal.contract is None


async def test_events_on_a_closed_mission_are_409_closed(
    gateway: GatewayTestClient, dev_server_env: WorkflowEnvironment
) -> None:
    cancelled = await submit(gateway)
    await apply(gateway, "proposal.cancelled", proposal_id=cancelled, reason="plus disponible")
    lost = await submit(gateway)
    await apply(gateway, "proposal.rated", proposal_id=lost, interesting=True)
    await apply(gateway, "proposal.lost", proposal_id=lost)

    for pid, stage in ((cancelled, "cancelled"), (lost, "lost")):
        handle = dev_server_env.client.get_workflow_handle(f"mission-{pid}")

        async def closed(handle: Any = handle) -> bool:
            status = (await handle.describe()).status
            return bool(status != WorkflowExecutionStatus.RUNNING)

        await eventually(closed)
        # A closed mission still answers its query.
        assert (await view(gateway, pid)).state.stage == stage

    await refused(
        await post(gateway, "proposal.retained", proposal_id=cancelled),
        f"proposal {cancelled} is closed",
    )
    qm_at = (datetime.now(PARIS) + timedelta(days=2)).isoformat()
    await refused(
        await post(gateway, "qualification_meeting.scheduled", proposal_id=lost, at=qm_at),
        "closed",
    )
    assert (await view(gateway, cancelled)).state.cancel_reason == "plus disponible"


async def test_unknown_proposal_document_rfp_and_mission_are_404(
    gateway: GatewayTestClient,
) -> None:
    missing = f"P-{uuid.uuid4().hex[:10]}"
    for event_type, data in (
        ("proposal.read", {"proposal_id": missing}),
        ("proposal.retained", {"proposal_id": missing}),
        (
            "contract.signed",
            {
                "proposal_id": missing,
                "signed_on": today().isoformat(),
                "payment_offer": "basic",
                "special_conditions_ref": "CP-1",
            },
        ),
        ("document.reviewed", {"document_id": "DOC-nope", "accepted": True}),
        ("rfp.closed", {"rfp_id": f"RFP-{uuid.uuid4().hex[:8]}"}),
    ):
        response = await gateway.post_event(envelope(event_type, data))
        assert response.status_code == 404, (event_type, response.text)
        assert "unknown" in response.json()["detail"]

    response = await gateway.http.get(f"/missions/{missing}")
    assert response.status_code == 404
    assert f"unknown mission '{missing}'" in response.json()["detail"]


async def test_duplicate_event_id_is_200_and_has_one_effect(gateway: GatewayTestClient) -> None:
    pid = await submit(gateway)
    read = envelope("proposal.read", {"proposal_id": pid})
    assert (await gateway.post_event(read)).status_code == 202
    again = await gateway.post_event(read)
    assert again.status_code == 200
    assert again.json() == {
        "event_id": read["event_id"],
        "status": "duplicate",
        "workflow_id": f"mission-{pid}",
        "first_delivery": "accepted",
    }
    siren = (await view(gateway, pid)).state.provider_siren
    uploaded = envelope(
        "document.uploaded",
        {
            "document_id": f"DOC-{uuid.uuid4().hex[:12]}",
            "provider_siren": siren,
            "kind": "sworn_statement",
            "issued_on": today().isoformat(),
            "file_ref": "s3://docs/sworn.pdf",
        },
    )
    assert (await gateway.post_event(uploaded)).status_code == 202
    assert (await gateway.post_event(uploaded)).json()["status"] == "duplicate"
    await apply(gateway, "proposal.retained", proposal_id=pid)

    mission = await view(gateway, pid)
    assert [e.kind for e in mission.state.timeline].count("proposal.read") == 1

    async def documents_listed() -> bool:
        return (await view(gateway, pid)).documents is not None

    await eventually(documents_listed)
    docs = (await view(gateway, pid)).documents
    assert docs is not None
    assert [d.document_id for d in docs.documents] == [uploaded["data"]["document_id"]]


async def test_rfp_closed_notifies_every_open_proposal_and_loses_the_undecided(
    gateway: GatewayTestClient,
) -> None:
    rfp = f"RFP-{uuid.uuid4().hex[:8]}"
    retained = await submit(gateway, rfp_id=rfp)
    undecided = await submit(gateway, rfp_id=rfp)
    cancelled = await submit(gateway, rfp_id=rfp)
    await retain(gateway, retained)
    await apply(gateway, "proposal.read", proposal_id=undecided)
    await apply(gateway, "proposal.cancelled", proposal_id=cancelled, reason="indisponible")

    response = await post(gateway, "rfp.closed", rfp_id=rfp)
    assert response.status_code == 202, response.text
    body = response.json()
    assert sorted(body["workflow_ids"]) == sorted([f"mission-{retained}", f"mission-{undecided}"])
    assert list(body["skipped"]) == [f"mission-{cancelled}"]

    assert (await until_stage(gateway, undecided, "lost")).state.proposal_status == "lost"
    kept = await view(gateway, retained)
    assert kept.state.stage == "legal_verification"
    assert kept.state.timeline[-1].kind == "rfp.closed"
    assert (await view(gateway, cancelled)).state.stage == "cancelled"


async def test_rfp_closed_with_no_open_proposal_left_is_409(gateway: GatewayTestClient) -> None:
    rfp = f"RFP-{uuid.uuid4().hex[:8]}"
    pid = await submit(gateway, rfp_id=rfp)
    await apply(gateway, "proposal.cancelled", proposal_id=pid, reason="indisponible")
    await until_stage(gateway, pid, "cancelled")
    await refused(await post(gateway, "rfp.closed", rfp_id=rfp), "no open proposal left")


# --- Documents and legal verification -------------------------------------------------------


async def test_document_uploaded_before_any_proposal_starts_the_provider_workflow(
    gateway: GatewayTestClient, dev_server_env: WorkflowEnvironment
) -> None:
    siren = new_siren()
    response = await post(
        gateway,
        "document.uploaded",
        document_id=(document_id := f"DOC-{uuid.uuid4().hex[:12]}"),
        provider_siren=siren,
        kind="urssaf_vigilance",
        issued_on=today().isoformat(),
        file_ref="s3://docs/urssaf.pdf",
    )
    assert response.status_code == 202, response.text
    assert response.json()["workflow_id"] == f"provider-{siren}"
    handle = dev_server_env.client.get_workflow_handle(f"provider-{siren}")
    status = await handle.query(COMPLIANCE_QUERY, result_type=ComplianceStatus)
    assert not status.compliant
    description = await handle.describe()
    assert description.typed_search_attributes.get(sa.PROVIDER_ID) == siren  # ops find it by SIREN
    assert [(d.document_id, d.status) for d in status.documents] == [(document_id, "under_review")]

    # Its review is routed to that workflow through the database.
    await apply(gateway, "document.reviewed", document_id=document_id, accepted=True)
    status = await handle.query(COMPLIANCE_QUERY, result_type=ComplianceStatus)
    assert status.documents[0].status == "accepted"

    # The provider's later mission sees the document.
    pid = await submit(gateway, provider=provider(siren))
    await retain(gateway, pid)

    async def shown() -> bool:
        docs = (await view(gateway, pid)).documents
        return docs is not None and [d.document_id for d in docs.documents] == [document_id]

    await eventually(shown)


async def test_mission_view_shows_what_is_missing_side_by_side_and_the_rejection(
    gateway: GatewayTestClient,
) -> None:
    siren = new_siren()
    pid = await submit(gateway, provider=provider(siren))
    await retain(gateway, pid)
    rejected = await upload(gateway, siren, "urssaf_vigilance")
    await apply(
        gateway, "document.reviewed", document_id=rejected, accepted=False, comment=REJECTION
    )
    under_review = await upload(gateway, siren, "kbis")

    async def signalled() -> bool:  # the provider workflow told the mission
        missing = (await view(gateway, pid)).missing["provider"]
        return any(REJECTION in item for item in missing)

    await eventually(signalled)
    mission = await view(gateway, pid)
    assert mission.missing["provider"] == [
        f"attestation de vigilance URSSAF (refusé : {REJECTION})",
        "extrait Kbis (en cours de vérification)",
        "attestation sur l'honneur (manquant)",
        "liste des salariés étrangers (manquant)",
        "signature des conditions particulières et choix de l'offre",
    ]
    assert mission.missing["client"] == ["bon de commande (purchase order)"]
    assert mission.documents is not None
    by_id = {d.document_id: d for d in mission.documents.documents}
    assert by_id[rejected].status == "rejected"
    assert by_id[rejected].comment == REJECTION
    assert by_id[under_review].status == "under_review"

    # A review of a document that was already reviewed does not apply.
    await refused(
        await post(gateway, "document.reviewed", document_id=rejected, accepted=True),
        "not under review",
    )
    # The client's side: once the purchase order is in, only the provider's side remains.
    await apply(gateway, "purchase_order.confirmed", proposal_id=pid, po_number="PO-42")
    await refused(
        await post(gateway, "purchase_order.confirmed", proposal_id=pid, po_number="PO-43"),
        "PO-42 is already confirmed",
    )
    assert (await view(gateway, pid)).missing["client"] == []


async def test_full_path_to_in_progress_through_the_gateway(
    gateway: GatewayTestClient, dev_server_env: WorkflowEnvironment
) -> None:
    siren = new_siren()
    start = today()
    # A one-day mission: its CRA opens today (days not yet worked are not billed), so the
    # provider can file it now, whatever the day.
    pid = await submit(
        gateway, provider=provider(siren), start_date=start.isoformat(), end_date=start.isoformat()
    )
    await retain(gateway, pid)
    first = await upload(gateway, siren, "urssaf_vigilance")
    await apply(gateway, "document.reviewed", document_id=first, accepted=False, comment=REJECTION)
    for kind in ("urssaf_vigilance", "kbis", "sworn_statement", "foreign_workers_list"):
        document_id = await upload(gateway, siren, kind, issued_days_ago=1)
        await apply(gateway, "document.reviewed", document_id=document_id, accepted=True)
    await apply(gateway, "purchase_order.confirmed", proposal_id=pid, po_number="PO-7")
    await apply(
        gateway,
        "contract.signed",
        proposal_id=pid,
        signed_on=start.isoformat(),
        payment_offer="flash",
        special_conditions_ref="CP-7",
    )

    mission = await until_stage(gateway, pid, "in_progress")
    assert mission.state.started_on == start
    assert mission.missing == {"provider": [], "client": []}
    assert mission.state.legal.contract is not None
    assert mission.state.legal.contract.payment_offer == "flash"
    kinds = [entry.kind for entry in mission.state.timeline]
    assert kinds[-2:] == ["legal_verification.completed", "mission.started"]
    assert mission.documents is not None and mission.documents.compliant
    description = await dev_server_env.client.get_workflow_handle(f"mission-{pid}").describe()
    assert description.typed_search_attributes.get(sa.MISSION_STAGE) == "in_progress"
    assert description.typed_search_attributes.get(sa.PAYMENT_OFFER) == "flash"
    # A second contract is refused: this one is already on fixed dates (only a contract
    # signed before 2025-04-28 moves to them by a new one); the offer changes at renewal.
    await refused(
        await post(
            gateway,
            "contract.signed",
            proposal_id=pid,
            signed_on=start.isoformat(),
            payment_offer="basic",
            special_conditions_ref="CP-8",
        ),
        "a new contract moves only an older contract to the fixed-date offers",
    )

    # The month's CRA cycle is open: the provider files, the approver validates.
    month = start.strftime("%Y-%m")

    async def cra_open() -> bool:
        return month in (await view(gateway, pid)).state.cra_months

    await eventually(cra_open)
    await apply(gateway, "cra.submitted", mission_id=pid, month=month, days="1")
    await refused(
        await post(gateway, "cra.validated", mission_id=pid, month=month, approver_id="APR-X"),
        "approver",
    )
    await apply(gateway, "cra.validated", mission_id=pid, month=month, approver_id="APR-1")

    async def validated() -> bool:
        return (await view(gateway, pid)).state.validated_months == [month]

    await eventually(validated)


async def test_a_cra_before_the_mission_started_is_409_with_the_reason(
    gateway: GatewayTestClient,
) -> None:
    pid = await submit(gateway, provider=provider(new_siren()))
    await retain(gateway, pid)
    month = today().strftime("%Y-%m")
    await refused(
        await post(gateway, "cra.submitted", mission_id=pid, month=month, days="1"),
        f"the CRA of {month} is not open",
        "contracting is still in progress",
    )
    unknown = await post(gateway, "cra.submitted", mission_id="P-nope", month=month, days="1")
    assert unknown.status_code == 404


# --- The CLI --------------------------------------------------------------------------------


async def test_contracting_mission_show(
    gateway: GatewayTestClient, dev_server_env: WorkflowEnvironment, stack_settings: Settings
) -> None:
    siren = new_siren()
    pid = await submit(gateway, provider=provider(siren), tjm="655.50")
    await retain(gateway, pid)
    rejected = await upload(gateway, siren, "urssaf_vigilance")
    await apply(
        gateway, "document.reviewed", document_id=rejected, accepted=False, comment=REJECTION
    )

    async def signalled() -> bool:
        return any(REJECTION in item for item in (await view(gateway, pid)).missing["provider"])

    await eventually(signalled)
    ledger = stack_settings.database_url  # the CLI reads the ledger directly
    code, out, err = await run_contracting(
        dev_server_env, "mission", "show", pid, database_url=ledger
    )
    assert code == 0, err
    assert f"Mission {pid}" in out
    assert "legal_verification — Vérification légale en cours" in out
    assert "655.50 €" in out
    assert "Côté prestataire — manque" in out
    assert "Côté client — manque" in out
    assert "bon de commande" in out
    assert f"« {REJECTION} »" in out
    assert "proposal.retained" in out

    code, out, err = await run_contracting(
        dev_server_env, "mission", "show", pid, "--json", database_url=ledger
    )
    assert code == 0, err
    shown = MissionView.model_validate(json.loads(out))
    assert shown == await view(gateway, pid)

    code, out, err = await run_contracting(
        dev_server_env, "mission", "show", "P-nope", database_url=ledger
    )
    assert code == 3  # not found
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown mission 'P-nope'")
