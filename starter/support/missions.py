"""What support sees of one mission: `GET /missions/{id}` and `contracting mission show ID`.

The ledger (PostgreSQL, `starter.support.ledger`) is the system of record: the mission, its
terms, legal verification, the provider's documents with their reviews, its CRAs and the
whole timeline, as recorded — so a mission answers the same once its workflows are gone
(closed longer ago than the namespace's retention, or deleted). While the mission's workflow
runs, its own state is taken, a moment ahead of the rows, with the ledger's timeline and
documents (`starter.support.live.with_live`); `live` says what Temporal answered: running,
closed, gone or unavailable (Temporal out of reach never stops a support read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.mission_rules import mission_periods
from schemas.compliance import ComplianceStatus, DocumentView
from schemas.enums import DocumentKind, MissionStage
from schemas.ids import mission_workflow_id
from schemas.mission import LiveWorkflow, MissionState, MissionView
from starter.support.ledger import read_mission, read_recorded
from starter.support.live import Live, live_mission, with_live

PARIS = ZoneInfo("Europe/Paris")
T = TypeVar("T")

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

LIVE_LABELS = {
    "running": "en cours d'exécution (son état en direct est ajouté)",
    "closed": "terminé",
    "gone": "plus dans Temporal (au-delà de la rétention, ou supprimé)",
    "unavailable": "Temporal ne répond pas",
}


class UnknownMission(LookupError):
    """Nothing in the ledger under this id, and no workflow either: never submitted."""

    def __init__(self, mission_id: str) -> None:
        super().__init__(
            f"unknown mission {mission_id!r}: no proposal recorded under this id in the ledger "
            f"and no workflow {mission_workflow_id(mission_id)} (check the id)"
        )
        self.mission_id = mission_id


class MissionUnavailable(RuntimeError):
    """The ledger (PostgreSQL) could not answer."""


@dataclass(frozen=True)
class Reading:
    """One mission as a support read sees it: the ledger's state with the live one added."""

    state: MissionState
    live: Live
    compliance: ComplianceStatus | None


@asynccontextmanager
async def ledger_session(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A read session on the ledger; PostgreSQL out of reach is `MissionUnavailable`."""
    try:
        async with sessions() as session:
            yield session
    except OSError as exc:
        raise MissionUnavailable(f"cannot reach PostgreSQL (the ledger): {exc}") from exc
    except SQLAlchemyError as exc:
        raise MissionUnavailable(f"cannot read the ledger in PostgreSQL: {exc}") from exc


async def read(
    session: AsyncSession, client: Client | None, mission_id: str, today: date
) -> Reading:
    """The mission from the ledger, with its running workflow's state added (`with_live`).
    A mission whose proposal the worker has not written yet is answered from its workflow
    alone."""
    live = await live_mission(client, mission_id)
    if live.state is not None:  # running: the ledger adds its timeline and documents
        added = await read_recorded(session, live.state, today)
        if added is None:
            return Reading(state=live.state, live=live, compliance=None)
        return Reading(
            state=with_live(added.state, live.state), live=live, compliance=added.compliance
        )
    recorded = await read_mission(session, mission_id, today)
    if recorded is None:
        raise UnknownMission(mission_id)
    return Reading(state=recorded.state, live=live, compliance=recorded.compliance)


async def mission_view(
    sessions: async_sessionmaker[AsyncSession],
    client: Client | None,
    mission_id: str,
    today: date | None = None,
) -> MissionView:
    """The mission's state, what each side still has to provide, and the provider's documents.

    Raises `UnknownMission` for an id the ledger has never seen, `MissionUnavailable` when
    PostgreSQL cannot answer; Temporal out of reach only shows in `live`."""
    today = today or datetime.now(PARIS).date()
    async with ledger_session(sessions) as session:
        reading = await read(session, client, mission_id, today)
    state = reading.state
    if state.stage not in VERIFIED_STAGES:
        return MissionView(
            state=state, missing={"provider": [], "client": []}, live=reading.live.workflow
        )
    return MissionView(
        state=state,
        missing=state.legal.missing(),
        documents=reading.compliance,
        live=reading.live.workflow,
    )


async def with_own_ledger(
    database_url: str, read: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    """For the CLI: `read` with its own connection pool to the ledger, closed afterwards."""
    from db.engine import create_engine, session_factory

    engine = create_engine(database_url)
    try:
        return await read(session_factory(engine))
    finally:
        await engine.dispose()


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


def live_lines(live: LiveWorkflow | None) -> list[str]:
    if live is None:
        return []
    label = LIVE_LABELS.get(live.status, live.status)
    if live.close_status:
        label = f"{label} ({live.close_status})"
    return [f"  Workflow        : {label} — faits lus dans le registre (PostgreSQL)"]


def render_mission(view: MissionView) -> str:
    """The mission as plain text for support: stage, proposal, dates, QM, legal
    verification side by side, documents with their review, timeline."""
    s = view.state
    lines = [
        f"Mission {s.mission_id} (workflow {mission_workflow_id(s.mission_id)})",
        *live_lines(view.live),
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
