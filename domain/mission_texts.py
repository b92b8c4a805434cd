"""What the mission says, in French: timeline details and the context of its e-mails.

The e-mails themselves are Jinja2 templates (activities/templates/); a transition names its
template and the values it fills in (`email`). Kept apart from the rules (`mission_rules.py`)
so that a change of wording is never a change of behaviour.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain.offers import offer_rule
from schemas.enums import PaymentOffer
from schemas.events import ProposalSubmitted
from schemas.mission import ContractTerms, EmailSpec, MissionState, Renewal, Role

EXPIRED_DOCUMENTS = "documents expirés"
LEGAL_VERIFICATION_UNDER_WAY = "Vérification légale en cours"
RFP_CLOSED_LOST = "AO clôturé : proposition non retenue"
END_OF_MISSION = "fin de mission"


def email(
    state: MissionState, proposal: ProposalSubmitted, role: Role, template: str, **extra: Any
) -> EmailSpec:
    """An e-mail to `role`: the template and the mission's values (as they are now)."""
    context: dict[str, Any] = {
        "mission_id": state.mission_id,
        "proposal_id": proposal.proposal_id,
        "rfp_id": proposal.rfp_id,
        "client_name": proposal.client.name,
        "provider_name": proposal.provider.name,
        "tjm": str(state.tjm),
        "start_date": state.start_date.isoformat(),
        "end_date": state.end_date.isoformat(),
        **extra,
    }
    return EmailSpec(role=role, template=template, context=context)


def both(
    state: MissionState, proposal: ProposalSubmitted, template: str, **extra: Any
) -> list[EmailSpec]:
    """The same e-mail to the provider and to the client."""
    return [
        email(state, proposal, "provider", template, **extra),
        email(state, proposal, "client", template, **extra),
    ]


def offer_label(offer: PaymentOffer) -> str:
    return offer_rule(offer).label


def tjm_change(previous: Decimal, new: Decimal) -> str:
    return f"TJM {previous} € → {new} €"


def proposal_submitted(tjm: Decimal) -> str:
    return f"TJM {tjm} €"


def starts_on(day: date) -> str:
    return f"démarrage le {day.isoformat()}"


def started_on(day: date) -> str:
    return f"démarrée le {day.isoformat()}"


def missing_documents(missing: list[str]) -> str:
    return "; ".join(missing)


def renewal_detail(renewal: Renewal) -> str:
    detail = f"jusqu'au {renewal.new_end_date.isoformat()}"
    if renewal.new_tjm is not None:
        detail += f", TJM {renewal.new_tjm} €"
    if renewal.payment_offer is not None:
        detail += f", offre {offer_label(renewal.payment_offer)}"
    return detail


def renewal_context(renewal: Renewal, tjm: Decimal) -> dict[str, Any]:
    """What the renewal e-mails show: the new end date, TJM and (once accepted) offer."""
    context: dict[str, Any] = {
        "new_end_date": renewal.new_end_date.isoformat(),
        "new_tjm": str(renewal.new_tjm or tjm),
        "tjm_changed": renewal.new_tjm is not None and renewal.new_tjm != tjm,
    }
    if renewal.payment_offer is not None:
        context["offer"] = offer_label(renewal.payment_offer)
    return context


def renewal_validated(approver_id: str) -> str:
    return f"par {approver_id}; vérification légale du renouvellement"


def renewal_declined(by: str, reason: str) -> str:
    return f"par le {'client' if by == 'client' else 'prestataire'} : {reason}"


def contract_version(terms: ContractTerms) -> str:
    return (
        f"contrat v{terms.version} du {terms.start_date.isoformat()} au "
        f"{terms.end_date.isoformat()}, TJM {terms.tjm} €, offre {offer_label(terms.payment_offer)}"
    )


def fixed_date_contract(terms: ContractTerms) -> str:
    return (
        f"nouveau contrat v{terms.version} signé le {terms.signed_on.isoformat()} : offre "
        f"{offer_label(terms.payment_offer)} à partir du {terms.start_date.isoformat()}"
    )


def terminated(end_date: date, reason: str) -> str:
    return f"fin anticipée au {end_date.isoformat()} : {reason}"


def ended(end_date: date, reason: str) -> str:
    return f"terminée le {end_date.isoformat()} ({reason})"
