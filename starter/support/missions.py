"""What support sees of one mission: `GET /missions/{id}` and `contracting mission show ID`.

The view comes from the workflows, not the database: the mission's `state` query and, once
the mission has reached legal verification, the `compliance` query of its provider's
`provider-<SIREN>` workflow (the documents and what is missing). Closed missions (lost,
cancelled) answer too, for as long as the namespace retains their history.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.mission_rules import mission_periods
from schemas.compliance import ComplianceStatus, DocumentView
from schemas.enums import DocumentKind, MissionStage
from schemas.ids import mission_workflow_id, provider_workflow_id
from schemas.mission import MissionState, MissionView
from schemas.names import COMPLIANCE_QUERY, STATE_QUERY

PARIS = ZoneInfo("Europe/Paris")

VERIFIED_STAGES = frozenset(
    {
        MissionStage.LEGAL_VERIFICATION,
        MissionStage.TO_START,
        MissionStage.IN_PROGRESS,
        MissionStage.RENEWAL_PENDING,
        MissionStage.COMPLETED,
        MissionStage.TERMINATED,
    }
)
"""Stages at or after legal verification: the provider's documents matter from there on."""

STAGE_LABELS = {
    MissionStage.PROPOSAL: "proposition",
    MissionStage.QUALIFICATION: "qualification (entretien)",
    MissionStage.LEGAL_VERIFICATION: "Vérification légale en cours",
    MissionStage.TO_START: "à démarrer",
    MissionStage.IN_PROGRESS: "en cours",
    MissionStage.RENEWAL_PENDING: "renouvellement en attente",
    MissionStage.COMPLETED: "terminée",
    MissionStage.LOST: "perdue",
    MissionStage.CANCELLED: "annulée par le prestataire",
    MissionStage.TERMINATED: "arrêtée avant terme",
}

DOCUMENT_STATUS_LABELS = {
    "under_review": "en cours de vérification",
    "accepted": "accepté",
    "rejected": "refusé",
    "expired": "expiré",
}


class UnknownMission(LookupError):
    """No workflow `mission-<id>`: never submitted, or its history is no longer retained."""

    def __init__(self, mission_id: str) -> None:
        super().__init__(
            f"unknown mission {mission_id!r}: no workflow {mission_workflow_id(mission_id)} "
            "(never submitted, or closed longer ago than the namespace's retention)"
        )
        self.mission_id = mission_id


class MissionUnavailable(RuntimeError):
    """Temporal could not answer (unreachable, or the query failed)."""


async def mission_view(client: Client, mission_id: str) -> MissionView:
    """The mission's state, what each side still has to provide, and the provider's documents.

    Raises `UnknownMission` when there is no such workflow, `MissionUnavailable` when
    Temporal cannot answer.
    """
    handle = client.get_workflow_handle(mission_workflow_id(mission_id))
    try:
        state = await handle.query(STATE_QUERY, result_type=MissionState)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownMission(mission_id) from exc
        raise MissionUnavailable(
            f"Temporal did not answer for mission {mission_id}: {exc}"
        ) from exc
    except WorkflowQueryFailedError as exc:
        raise MissionUnavailable(f"the state query of mission {mission_id} failed: {exc}") from exc
    if state.stage not in VERIFIED_STAGES:
        return MissionView(state=state, missing={"provider": [], "client": []})
    return MissionView(
        state=state,
        missing=state.legal.missing(),
        documents=await _compliance(client, state.provider_siren),
    )


async def _compliance(client: Client, siren: str) -> ComplianceStatus | None:
    """Today's compliance of the provider; None while its workflow has not started yet (the
    mission subscribes to it right after retention)."""
    handle = client.get_workflow_handle(provider_workflow_id(siren))
    try:
        status: ComplianceStatus = await handle.query(
            COMPLIANCE_QUERY, result_type=ComplianceStatus
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise MissionUnavailable(f"Temporal did not answer for provider {siren}: {exc}") from exc
    except WorkflowQueryFailedError as exc:
        raise MissionUnavailable(f"the compliance query of provider {siren} failed: {exc}") from exc
    return status


# --- For a person ---------------------------------------------------------------------------


def _when(at: datetime) -> str:
    return at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")


def _day(day: date | None) -> str:
    return day.isoformat() if day else "—"


KIND_LABELS = {
    DocumentKind.URSSAF_VIGILANCE: "attestation de vigilance URSSAF",
    DocumentKind.KBIS: "extrait Kbis",
    DocumentKind.SIRENE_SITUATION: "avis de situation Sirene",
    DocumentKind.SWORN_STATEMENT: "attestation sur l'honneur",
    DocumentKind.FOREIGN_WORKERS_LIST: "liste des salariés étrangers",
}


def _document_lines(doc: DocumentView) -> list[str]:
    status = DOCUMENT_STATUS_LABELS.get(doc.status, doc.status)
    lines = [
        f"  - {KIND_LABELS.get(doc.kind, doc.kind.value)} ({doc.document_id}) : {status}",
        f"      émis le {doc.issued_on.isoformat()}, "
        f"valable jusqu'au {doc.expires_on.isoformat()} (exclu)",
    ]
    if doc.comment:
        lines.append(f"      motif : « {doc.comment} »")
    return lines


def _periods(s: MissionState) -> list[str]:
    """Each billing period: a month, or each part of a month that new terms split."""
    lines = []
    for period in mission_periods(s):
        status = (
            "CRA validé"
            if period.key in s.validated_months
            else "CRA ouvert"
            if period.key in s.cra_months
            else "à venir"
        )
        terms = period.terms
        offer = f"TJM {terms.tjm} €, offre {terms.payment_offer.value}" if terms else "—"
        lines.append(
            f"  {period.key:<11} du {period.start.isoformat()} au {period.end.isoformat()}, "
            f"{offer} — {status}"
        )
    return lines


def render_mission(view: MissionView) -> str:
    """The mission as plain text for support: stage, proposal, dates, QM, legal
    verification side by side, documents with their review, timeline."""
    s = view.state
    lines = [
        f"Mission {s.mission_id} (workflow {mission_workflow_id(s.mission_id)})",
        f"  Étape           : {s.stage.value} — {STAGE_LABELS.get(s.stage, s.stage.value)}",
        f"  Proposition     : {s.proposal_status.value}",
        f"  AO              : {s.rfp_id}",
        f"  Client          : {s.client_id}",
        f"  Prestataire     : SIREN {s.provider_siren}",
        f"  TJM             : {s.tjm} € HT",
        f"  Dates           : du {s.start_date.isoformat()} au {s.end_date.isoformat()}",
    ]
    if s.qualification_meeting_at is not None:
        held = "tenu" if s.qualification_meeting_held else "prévu"
        lines.append(f"  Entretien (QM)  : {_when(s.qualification_meeting_at)} ({held})")
    if s.cancel_reason:
        lines.append(f"  Motif d'annulation : {s.cancel_reason}")
    if s.started_on:
        lines.append(f"  Démarrée le     : {s.started_on.isoformat()}")
    if s.compliance_alert:
        lines.append("  ALERTE          : la conformité du prestataire a expiré pendant la mission")

    if s.stage in VERIFIED_STAGES:
        legal = s.legal
        lines += ["", "Vérification légale"]
        for side, title in (("provider", "Côté prestataire"), ("client", "Côté client")):
            missing = view.missing.get(side, [])
            if missing:
                lines.append(f"  {title} — manque :")
                lines += [f"    - {item}" for item in missing]
            else:
                lines.append(f"  {title} — complet")
        if legal.provider_compliant and legal.provider_valid_until:
            lines.append(
                f"  Documents légaux : conformes jusqu'au {legal.provider_valid_until} (exclu)"
            )
        lines.append(f"  Bon de commande : {legal.purchase_order or '—'}")
        contract = legal.contract
        if contract is not None:
            lines.append(
                f"  Contrat         : signé le {contract.signed_on.isoformat()}, offre "
                f"{contract.payment_offer.value}, conditions particulières "
                f"{contract.special_conditions_ref}"
            )
        else:
            lines.append("  Contrat         : non signé")
        for terms in s.renewals:
            lines.append(
                f"  Contrat v{terms.version}      : signé le {terms.signed_on.isoformat()}, du "
                f"{terms.start_date.isoformat()} au {terms.end_date.isoformat()}, TJM "
                f"{terms.tjm} €, offre {terms.payment_offer.value}"
            )
    if s.stage in VERIFIED_STAGES and s.legal.contract is not None and s.started_on:
        lines += ["", "Périodes de facturation (un CRA, une facture, un paiement chacune)"]
        lines += _periods(s)

    docs = view.documents
    if docs is not None:
        verdict = "non conforme"
        if docs.compliant:
            verdict = f"conforme jusqu'au {_day(docs.valid_until)} (exclu)"
        lines += ["", f"Documents du prestataire (au {docs.on.isoformat()} : {verdict})"]
        if docs.documents:
            for doc in docs.documents:
                lines += _document_lines(doc)
        else:
            lines.append("  aucun document déposé")
    elif s.stage in VERIFIED_STAGES:
        lines += ["", "Documents du prestataire : aucun (dossier de conformité pas encore ouvert)"]

    lines += ["", "Historique"]
    for entry in s.timeline:
        detail = f"  {entry.detail}" if entry.detail else ""
        lines.append(f"  {_when(entry.at)}  {entry.kind}{detail}")
    return "\n".join(lines)
