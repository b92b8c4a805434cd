"""Why a CRA is not visible, why a payout has not arrived: French sentences for support.

Pure functions over facts the workflows already hold (mission stage and dates, the month's
CRA cycle, the payout's state and facts). Each `Explanation` carries a stable `code`, the
sentence a support agent reads to the provider, and the facts (dates, amounts, invoice
number) it rests on. Reasons follow domain-rules.md ("A CRA is not visible…", "Why a payout
can be late").
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from domain.calendar import NonBusinessDay, non_business_days_between
from domain.formatting import date_fr, day_month_fr, long_date_fr, money_fr
from domain.offers import offer_rule
from domain.payouts import LEGAL_MAX_PAYMENT_DAYS
from schemas.enums import CraStatus, MissionStage, PaymentOffer, PayoutStatus

LATE_VALIDATION_DAYS = 5
"""A CRA validated more than this many days after its month's end counts as validated late
(product decision: the payout delay only starts at validation)."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """One reason, as a stable code, a French sentence and the facts it rests on."""

    code: str
    message: str
    facts: dict[str, str] = field(default_factory=dict)


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of a `YYYY-MM` month (of its month, for a period key `YYYY-MM-p2`)."""
    year, number = (int(part) for part in month[:7].split("-"))
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def month_fr(month: str) -> str:
    """`2026-07` → `07/2026`; a later period of a split month, `2026-07-p2` → `07/2026
    (période 2)`."""
    year, number = month[:7].split("-")
    part = month[9:]
    return f"{number}/{year}" + (f" (période {part})" if part else "")


# --- CRA visibility ---------------------------------------------------------------------------

_CONTRACTING = "la contractualisation est en cours chez le client"
_RENEWAL_WAITS = {
    "requested": " : il attend l'acceptation du prestataire",
    "accepted": " : il attend la validation du client",
    "validated": " : validé, il attend la vérification légale du prestataire",
}


def why_cra_not_visible(
    *,
    stage: MissionStage,
    start_date: date,
    end_date: date | None = None,
    month: str,
    today: date,
    renewal_pending: bool = False,
    renewal_step: str | None = None,
    renewal_blocked: str | None = None,
    cra_open: bool = False,
    opens_on: date | None = None,
) -> Explanation | None:
    """None when the month's CRA is visible (its cycle is open), otherwise why not: the FAQ's
    reasons (contracting in progress, mission not started, renewal awaiting validation) and,
    for a mission in progress, a month outside the mission or not begun yet."""
    if cra_open:
        return None
    label = month_fr(month)
    facts = {"stage": stage.value, "month": month, "start_date": start_date.isoformat()}
    first, last = month_bounds(month)
    pending = renewal_pending or stage is MissionStage.RENEWAL_PENDING or renewal_step is not None
    renewed_month = end_date is None or first > end_date
    if pending and renewed_month:
        if end_date is not None:
            facts["end_date"] = end_date.isoformat()
        if renewal_step is not None:
            facts["renewal_step"] = renewal_step
        return Explanation(
            "renewal_pending",
            f"Le CRA de {label} n'est pas visible : un renouvellement attend la validation du "
            f"prestataire ou du client{_RENEWAL_WAITS.get(renewal_step or '', '')}"
            + (f" ({renewal_blocked})" if renewal_blocked else "")
            + ".",
            facts,
        )
    if stage is MissionStage.RENEWAL_PENDING:
        stage = MissionStage.IN_PROGRESS  # the months of the current period run as usual
    if stage in (MissionStage.PROPOSAL, MissionStage.QUALIFICATION):
        return Explanation(
            "contracting_not_begun",
            f"Le CRA de {label} n'est pas visible : la proposition n'est pas encore retenue, "
            "la contractualisation n'a pas commencé.",
            facts,
        )
    if stage is MissionStage.LEGAL_VERIFICATION:
        return Explanation(
            "contracting_in_progress",
            f"Le CRA de {label} n'est pas visible : {_CONTRACTING} (Vérification légale en "
            f"cours) ; la mission doit démarrer le {date_fr(start_date)}.",
            facts,
        )
    if stage is MissionStage.TO_START or (stage is MissionStage.IN_PROGRESS and today < start_date):
        return Explanation(
            "mission_not_started",
            f"Le CRA de {label} n'est pas visible : la mission n'a pas démarré (elle démarre "
            f"le {date_fr(start_date)}).",
            facts,
        )
    if stage is MissionStage.IN_PROGRESS:
        if last < start_date or (end_date is not None and first > end_date):
            period = f"du {date_fr(start_date)}"
            if end_date is not None:
                period += f" au {date_fr(end_date)}"
                facts["end_date"] = end_date.isoformat()
            return Explanation(
                "not_a_mission_month",
                f"Le CRA de {label} n'existe pas : ce mois est hors de la mission ({period}).",
                facts,
            )
        opens = max(first, start_date, opens_on or first)  # a later period: its first day
        if today < opens:
            facts["opens_on"] = opens.isoformat()
            return Explanation(
                "month_not_begun",
                f"Le CRA de {label} n'est pas encore ouvert : il s'ouvre le {date_fr(opens)}.",
                facts,
            )
        return Explanation(
            "cycle_not_open",
            f"Le CRA de {label} devrait être ouvert mais son cycle n'existe pas : à signaler "
            "à l'équipe ops.",
            facts,
        )
    return Explanation(
        "mission_closed",
        f"Le CRA de {label} n'est pas visible : la mission n'est plus active ({stage.value}).",
        facts,
    )


# --- Payout -----------------------------------------------------------------------------------


def _nbd_note(days: tuple[NonBusinessDay, ...]) -> str:
    parts: list[str] = []
    weekend = [day for day in days if day.holiday is None]
    if weekend:
        parts.append("le week-end (" + ", ".join(day_month_fr(d.day) for d in weekend) + ")")
    for day in days:
        if day.holiday is not None:
            parts.append(f"le {day_month_fr(day.day)} est férié : {day.holiday}")
    return " ; ".join(parts)


def _date_shifted(
    label: str,
    raw_date: date,
    payout_date: date,
    legal_limit: date | None,
    facts: dict[str, str],
) -> Explanation:
    """Why a dated payout is not on its raw date: a start on a non-business day moved to the
    next business day (immediate payment); a Basic / Express date brought to the previous
    business day by a weekend or a holiday, or by the legal maximum (`legal_limit`, given
    only when the cap is what moved it) and then by a weekend or a holiday it falls on."""
    facts = {**facts, "raw_date": raw_date.isoformat()}
    raw = long_date_fr(raw_date)
    payout = long_date_fr(payout_date)
    if payout_date > raw_date:
        skipped = non_business_days_between(raw_date, payout_date - timedelta(days=1))
        message = (
            f"Offre {label} : la date théorique du {raw} n'est pas un jour ouvré "
            f"({_nbd_note(skipped)}), paiement reporté au jour ouvré suivant, le {payout}."
        )
        return Explanation("date_shifted", message, facts)
    if legal_limit is None:
        skipped = non_business_days_between(payout_date + timedelta(days=1), raw_date)
        message = (
            f"Offre {label} : la date théorique du {raw} n'est pas un jour ouvré "
            f"({_nbd_note(skipped)}), paiement avancé au jour ouvré précédent, le {payout} "
            "(jamais après la date promise)."
        )
        return Explanation("date_shifted", message, facts)
    facts["legal_limit"] = legal_limit.isoformat()
    message = (
        f"Offre {label} : la date théorique du {raw} dépasse la limite légale de "
        f"{LEGAL_MAX_PAYMENT_DAYS} jours "
        f"après la facture (art. L441-10 du Code de commerce), le {long_date_fr(legal_limit)}"
    )
    if payout_date == legal_limit:
        message += f" : paiement avancé à cette limite, le {payout}."
    else:
        skipped = non_business_days_between(payout_date + timedelta(days=1), legal_limit)
        message += (
            f", qui n'est pas un jour ouvré ({_nbd_note(skipped)}) : paiement avancé au jour "
            f"ouvré précédent, le {payout}."
        )
    return Explanation("date_shifted", message, facts)


def why_payout_not_arrived(
    *,
    month: str,
    today: date,
    offer: PaymentOffer | None,
    cra_status: CraStatus | None,
    submitted_on: date | None = None,
    submission_opens: date | None = None,
    validated_on: date | None = None,
    rejection_comment: str | None = None,
    manual_import: bool = False,
    invoice_number: str | None = None,
    invoice_date: date | None = None,
    payout_status: PayoutStatus | None = None,
    payout_date: date | None = None,
    paid_on: date | None = None,
    net_amount: Decimal | None = None,
    raw_date: date | None = None,
    legal_limit: date | None = None,
    capped_by_legal_limit: bool = False,
    client_paid_on: date | None = None,
    client_paid: Decimal | None = None,
    client_still_due: Decimal | None = None,
) -> list[Explanation]:
    """Why the month's payout has not arrived (or that it has), each reason with its facts:
    CRA not validated (and, not submitted yet, the day `submission_opens` it can be) or
    validated late, invoice not imported, fixed delay running, Flash or
    a fixed date shifted by weekends and holidays, client not paid (back-to-back), due date
    not reached, already paid."""
    label = month_fr(month)
    reasons: list[Explanation] = []
    if cra_status is not CraStatus.VALIDATED or validated_on is None:
        facts = {"month": month, "cra_status": cra_status.value if cra_status else "none"}
        if cra_status is CraStatus.SUBMITTED:
            when = f" (soumis le {date_fr(submitted_on)})" if submitted_on else ""
            if submitted_on:
                facts["submitted_on"] = submitted_on.isoformat()
            detail = f"il est soumis{when} et attend la validation du client"
        elif cra_status is CraStatus.REJECTED:
            detail = "le client l'a rejeté, il est revenu au prestataire"
            if rejection_comment:
                detail += f" (motif : « {rejection_comment} »)"
        elif cra_status is CraStatus.DRAFT:
            detail = "le prestataire ne l'a pas encore soumis"
            if submission_opens is not None and today < submission_opens:
                # Days not yet worked are not billed: the CRA opens on its due day.
                facts["submission_opens_on"] = submission_opens.isoformat()
                detail += (
                    f", il ne peut le soumettre qu'à partir du {date_fr(submission_opens)}, "
                    "dernier jour ouvré de la mission dans le mois (les jours pas encore "
                    "travaillés ne sont pas facturés)"
                )
        else:
            detail = "il n'existe pas encore"
        reasons.append(
            Explanation(
                "cra_not_validated",
                f"Pas de paiement pour {label} : le CRA n'est pas validé, {detail}. Le délai de "
                "paiement ne court qu'à partir de la validation.",
                facts,
            )
        )
        return reasons

    _, month_end = month_bounds(month)
    late_after = month_end + timedelta(days=LATE_VALIDATION_DAYS)
    if validated_on > late_after:
        days_late = (validated_on - month_end).days
        reasons.append(
            Explanation(
                "cra_validated_late",
                f"Le CRA de {label} a été validé tard, le {long_date_fr(validated_on)}, soit "
                f"{days_late} jours après la fin du mois ({date_fr(month_end)}) : le délai de "
                "paiement court à partir de cette validation.",
                {
                    "validated_on": validated_on.isoformat(),
                    "month_end": month_end.isoformat(),
                    "days_after_month_end": str(days_late),
                },
            )
        )

    if payout_status is PayoutStatus.PAID:
        facts = {"validated_on": validated_on.isoformat()}
        when = ""
        if paid_on is not None:
            facts["paid_on"] = paid_on.isoformat()
            when = f" le {long_date_fr(paid_on)}"
        amount = ""
        if net_amount is not None:
            facts["net_amount"] = str(net_amount)
            amount = f" ({money_fr(net_amount)} net)"
        if invoice_number:
            facts["invoice_number"] = invoice_number
        invoice = f" de la facture {invoice_number}" if invoice_number else ""
        message = f"Le paiement{invoice} pour {label} a déjà été effectué{when}{amount}."
        if net_amount is not None and net_amount == 0:
            # A month whose lines were absorbed by a carried balance (domain.carry_over).
            message = (
                f"Aucun virement{invoice} pour {label}{when} : le montant à verser était de "
                f"{money_fr(net_amount)} (aucun versement n'est négatif)."
            )
        reasons.append(Explanation("paid", message, facts))
        return reasons
    if payout_status is PayoutStatus.CANCELLED:
        reasons.append(
            Explanation(
                "cancelled",
                f"Le paiement pour {label} est annulé : la facture "
                f"{invoice_number or '(sans numéro)'} a été annulée par un avoir.",
                {"invoice_number": invoice_number or ""},
            )
        )
        return reasons

    if payout_status is PayoutStatus.WAITING_INVOICE_IMPORT or (
        manual_import and invoice_number is None
    ):
        reasons.append(
            Explanation(
                "invoice_not_imported",
                f"Le CRA de {label} est validé depuis le {date_fr(validated_on)} mais le "
                "prestataire n'a pas encore importé sa facture (import manuel) : le paiement "
                "attend l'import, la date de facture sera celle de l'import.",
                {"validated_on": validated_on.isoformat(), "invoice_mode": "manual_import"},
            )
        )
        return reasons

    if payout_status is None:
        reasons.append(
            Explanation(
                "payout_not_started",
                f"Le CRA de {label} est validé (le {date_fr(validated_on)}) mais aucun paiement "
                "n'est encore planifié : à signaler à l'équipe ops.",
                {"validated_on": validated_on.isoformat()},
            )
        )
        return reasons

    if offer is PaymentOffer.BACK_TO_BACK or payout_status is PayoutStatus.WAITING_CLIENT_PAYMENT:
        number = invoice_number or "(sans numéro)"
        facts = {"invoice_number": number, "validated_on": validated_on.isoformat()}
        if client_paid_on is None and client_paid and client_still_due:
            # Partly paid: the payments accumulate until they cover the invoice.
            facts["client_paid"] = str(client_paid)
            facts["client_still_due"] = str(client_still_due)
            reasons.append(
                Explanation(
                    "client_partly_paid",
                    "Offre back-to-back : le prestataire est payé après le règlement complet du "
                    f"client ; le client a réglé {money_fr(client_paid)} de la facture {number}, "
                    f"il reste {money_fr(client_still_due)} à payer (CRA validé le "
                    f"{date_fr(validated_on)}).",
                    facts,
                )
            )
            return reasons
        if client_paid_on is None:
            reasons.append(
                Explanation(
                    "client_not_paid",
                    "Offre back-to-back : le prestataire est payé après le règlement du client, "
                    f"et le client n'a pas encore payé la facture {number} (CRA validé le "
                    f"{date_fr(validated_on)}).",
                    facts,
                )
            )
            return reasons
        facts["client_paid_on"] = client_paid_on.isoformat()

    if payout_date is None:
        return reasons
    rule = offer_rule(offer) if offer is not None else None
    facts = {
        "offer": offer.value if offer else "",
        "validated_on": validated_on.isoformat(),
        "payout_date": payout_date.isoformat(),
    }
    if rule is not None and rule.delay_calendar_days is not None and today < payout_date:
        reasons.append(
            Explanation(
                "fixed_delay_running",
                f"Offre {rule.label} : délai fixe de {rule.delay_calendar_days} jours après la "
                f"validation du CRA ({date_fr(validated_on)}), toujours en cours : paiement "
                f"prévu le {long_date_fr(payout_date)}. Un paiement anticipé du client ne "
                "l'avance pas.",
                {**facts, "delay_days": str(rule.delay_calendar_days)},
            )
        )
    if rule is not None and rule.delay_business_days:
        skipped = non_business_days_between(validated_on + timedelta(days=1), payout_date)
        if skipped:
            reasons.append(
                Explanation(
                    "flash_shifted",
                    f"Offre {rule.label} : CRA validé le {long_date_fr(validated_on)}, paiement "
                    f"{rule.delay_business_days} jours ouvrés plus tard, le "
                    f"{long_date_fr(payout_date)} ; ne comptent pas : {_nbd_note(skipped)}.",
                    {
                        **facts,
                        "skipped": ", ".join(
                            d.day.isoformat() + (f" ({d.holiday})" if d.holiday else "")
                            for d in skipped
                        ),
                    },
                )
            )
    elif rule is not None and raw_date is not None and raw_date != payout_date:
        reasons.append(
            _date_shifted(
                rule.label,
                raw_date,
                payout_date,
                legal_limit if capped_by_legal_limit else None,
                facts,
            )
        )
    if today < payout_date:
        reasons.append(
            Explanation(
                "due_date_not_reached",
                f"La date de paiement du {long_date_fr(payout_date)} n'est pas encore atteinte "
                f"(nous sommes le {date_fr(today)}).",
                {**facts, "today": today.isoformat()},
            )
        )
    else:
        reasons.append(
            Explanation(
                "payout_overdue",
                f"La date de paiement du {long_date_fr(payout_date)} est passée et le paiement "
                "n'est pas marqué effectué : à signaler à l'équipe ops.",
                {**facts, "today": today.isoformat()},
            )
        )
    if invoice_date is not None and invoice_date != validated_on:
        for reason in reasons:
            reason.facts.setdefault("invoice_date", invoice_date.isoformat())
    return reasons
