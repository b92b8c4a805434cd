"""No negative invoice, no negative payout: what a month cannot absorb is carried over
(issue 11 point 2, decision of 2026-11-30, docs/domain-rules.md#carry-over).

Two balances a provider may owe, each carried on its own because each is owed to someone else:

- **invoice** (excl. VAT, owed to the client): a month whose standard-rate base (service,
  overtime, corrections, standard-rate expenses and the balances carried into it) is negative
  invoices 0 on that base and closes it with a line "Solde négatif de <mois> reporté sur la
  facture du mois suivant"; the next month validated opens with "Report du solde négatif de
  <mois> (facture F-…, CRA YYYY-MM)" for the same amount, negative. A correction is at the
  standard VAT rate: it is not set off against expenses taxed at another rate (that would move
  VAT between rates), so no VAT line, hence no total, is ever negative.
- **fee** (owed to the platform): a payout whose fee (and the fee balances carried into it)
  exceeds its gross pays 0 and carries the rest to the next payout, never to the client's
  invoice (the client owes no part of the platform's fee).

A month whose lines are entirely absorbed still gets its invoice, of 0 € (self-billing
invoices are numbered continuously; the 0 € invoice is where the carried balance is written
down for the accountant), and its payout of 0 €, which wires nothing and says so.

Pure: the ledger (`carried_balances`, activities/cra.py) feeds the balances in and stores
what comes out, in the CRA validation's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from domain.explanations import Explanation
from domain.formatting import long_date_fr, money_fr
from domain.formatting import month_year_fr as month_fr
from domain.invoices import InvoiceAmounts, invoice_amounts_for_cra
from domain.money import ZERO, to_money
from domain.payouts import back_to_back_payout_date
from schemas.enums import PaymentOffer, PayoutStatus, VatRegime
from schemas.events import CorrectionLine, CraSubmitted
from schemas.payouts import CarriedBalance, CarryKind, PayoutDateFacts, PayoutTerms

CARRIED_IN = "Report du solde négatif de "
CARRIED_OUT = "Solde négatif de "


def carried_in_label(balance: CarriedBalance) -> str:
    """The line of the invoice that absorbs a balance, naming where it comes from."""
    invoice = f"facture {balance.invoice_number}" if balance.invoice_number else "facture"
    return f"{CARRIED_IN}{month_fr(balance.from_month)} ({invoice}, CRA {balance.from_month})"


def carried_out_label(month: str) -> str:
    """The line that closes a month's invoice at 0 on its standard-rate base."""
    return f"{CARRIED_OUT}{month_fr(month)} reporté sur la facture du mois suivant"


def is_carry_line(label: str) -> bool:
    """A correction line the ledger wrote (printed as it is, not as a "Régularisation")."""
    return label.startswith(CARRIED_IN) or (
        label.startswith(CARRIED_OUT) and label.endswith("reporté sur la facture du mois suivant")
    )


@dataclass(frozen=True, slots=True)
class MonthInvoice:
    """A month's invoice once the carried balances are applied."""

    cra: CraSubmitted
    """The CRA with the carry lines appended to its corrections: what the invoice prints."""
    amounts: InvoiceAmounts
    carried_out: Decimal
    """Excl. VAT, owed to the client, carried to the next invoice (0: none)."""


def unabsorbed(amounts: InvoiceAmounts) -> Decimal:
    """How far below zero the invoice's lowest VAT base is (0 when none is)."""
    lowest = min((line.base for line in amounts.vat_breakdown), default=ZERO)
    return to_money(-lowest) if lowest < 0 else ZERO


def month_invoice(
    cra: CraSubmitted,
    tjm: Decimal,
    *,
    regime: VatRegime,
    carried: Sequence[CarriedBalance] = (),
) -> MonthInvoice:
    """The month's invoice: its own lines, minus the invoice balances carried into it, and
    what it cannot absorb carried out. No VAT base, so no total, is ever below zero."""
    lines = [
        CorrectionLine(
            label=carried_in_label(balance),
            amount=-balance.amount,
            corrects_month=balance.from_month,
        )
        for balance in carried
        if balance.kind is CarryKind.INVOICE
    ]
    with_in = cra.model_copy(update={"corrections": [*cra.corrections, *lines]})
    amounts = invoice_amounts_for_cra(with_in, tjm, regime=regime)
    short = unabsorbed(amounts)
    if short == 0:
        return MonthInvoice(cra=with_in, amounts=amounts, carried_out=ZERO)
    out = CorrectionLine(label=carried_out_label(cra.month), amount=short, corrects_month=cra.month)
    final = with_in.model_copy(update={"corrections": [*with_in.corrections, out]})
    amounts = invoice_amounts_for_cra(final, tjm, regime=regime)
    return MonthInvoice(cra=final, amounts=amounts, carried_out=short)


@dataclass(frozen=True, slots=True)
class PayoutSettlement:
    """What the payout pays once the fee balances are applied: net = gross - fee - deducted +
    carried_out, never below zero."""

    net: Decimal
    deducted: Decimal
    """The fee balances of earlier months taken in by this payout (all of them)."""
    carried_out: Decimal
    """What this payout could not cover (its fee and those balances), for the next one."""


def settle_payout(
    gross: Decimal, fee: Decimal, carried: Sequence[CarriedBalance] = ()
) -> PayoutSettlement:
    """The payout's net: its gross minus its fee and the fee balances carried into it; what
    it cannot cover is carried to the next payout, so the net is never below zero."""
    deducted = to_money(sum((b.amount for b in carried if b.kind is CarryKind.FEE), ZERO))
    available = to_money(gross - fee - deducted)
    if available >= 0:
        return PayoutSettlement(net=available, deducted=deducted, carried_out=ZERO)
    return PayoutSettlement(net=ZERO, deducted=deducted, carried_out=-available)


def explain_carry_over(
    month: str,
    carried_in: Sequence[CarriedBalance],
    carried_out: Sequence[CarriedBalance],
) -> list[Explanation]:
    """For support: which balances the month took in (from where, how much) and what it
    carried on (how much, into which month when known)."""
    reasons = []
    for balance in carried_in:
        what = "de la facture" if balance.kind is CarryKind.INVOICE else "de frais"
        where = (
            "déduit de la facture (ligne « Report du solde négatif »)"
            if balance.kind is CarryKind.INVOICE
            else "déduit du versement"
        )
        origin = f" (facture {balance.invoice_number})" if balance.invoice_number else ""
        reasons.append(
            Explanation(
                code="carried_in",
                message=(
                    f"Solde négatif {what} de {month_fr(balance.from_month)}{origin} reporté "
                    f"sur {month_fr(month)} : {money_fr(balance.amount)} {where}."
                ),
                facts={
                    "kind": balance.kind.value,
                    "from_month": balance.from_month,
                    "into_month": month,
                    "amount": str(balance.amount),
                },
            )
        )
    for balance in carried_out:
        what = "de la facture" if balance.kind is CarryKind.INVOICE else "de frais"
        into = (
            f"reporté sur {month_fr(balance.into_month)}"
            if balance.into_month
            else "reporté sur le prochain mois validé"
        )
        facts = {"kind": balance.kind.value, "from_month": month, "amount": str(balance.amount)}
        if balance.into_month:
            facts["into_month"] = balance.into_month
        reasons.append(
            Explanation(
                code="carried_out",
                message=(
                    f"{month_fr(month).capitalize()} n'a pas pu absorber un solde négatif "
                    f"{what} de {money_fr(balance.amount)} : {into} (rien n'est versé en "
                    "négatif)."
                ),
                facts=facts,
            )
        )
    return reasons


def outstanding_text(balances: Sequence[CarriedBalance]) -> str:
    """The balances still owed by the provider, in French, for the ops alert."""
    parts = []
    for balance in balances:
        what = "facture (HT)" if balance.kind is CarryKind.INVOICE else "frais"
        parts.append(f"{money_fr(balance.amount)} de {what} ({month_fr(balance.from_month)})")
    return ", ".join(parts)


def carry_context(terms: PayoutTerms) -> dict[str, str]:
    """What the provider's e-mails say about carried balances (amounts as strings, "" when
    none): taken in by the invoice or the payout, carried out to the next month."""

    def total(balances: Sequence[CarriedBalance], kind: CarryKind) -> Decimal:
        return to_money(sum((b.amount for b in balances if b.kind is kind), ZERO))

    def text(amount: Decimal) -> str:
        return str(amount) if amount else ""

    return {
        "carried_in_invoice": text(total(terms.carried_in, CarryKind.INVOICE)),
        "carried_in_fee": text(total(terms.carried_in, CarryKind.FEE)),
        "carried_out_invoice": text(total(terms.carried_out, CarryKind.INVOICE)),
        "carried_out_fee": text(total(terms.carried_out, CarryKind.FEE)),
        "carried_from": ", ".join(sorted({month_fr(b.from_month) for b in terms.carried_in})),
        "net_amount": str(terms.net_amount),
    }


def nothing_to_collect(terms: PayoutTerms) -> PayoutTerms:
    """A back-to-back payout of a 0 € invoice waits for no client payment (the client owes
    nothing): it is dated like one the client paid on the invoice's date, and pays 0 €."""
    if (
        terms.offer is not PaymentOffer.BACK_TO_BACK
        or terms.amount != 0
        or terms.invoice_date is None
    ):
        return terms
    day = back_to_back_payout_date(terms.invoice_date)
    facts = PayoutDateFacts(
        raw_date=terms.invoice_date,
        explanation=(
            "Dos à dos : facture de 0,00 €, rien à encaisser du client ; versement de "
            f"{money_fr(terms.net_amount)} le {long_date_fr(day)}."
        ),
    )
    return terms.model_copy(
        update={"payout_date": day, "status": PayoutStatus.SCHEDULED, "schedule": facts}
    )
