"""Every French template renders to one subject line and a body, with no variable left out."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import DictLoader, Environment, StrictUndefined

from activities import emails
from activities.emails import render

TEMPLATES = sorted(
    p.name.removesuffix(".txt.j2")
    for p in (Path(__file__).parents[2] / "activities" / "templates").glob("*.txt.j2")
)

CONTEXT = {
    "mission_id": "P-1",
    "proposal_id": "P-1",
    "rfp_id": "RFP-90064-1",
    "client_name": "Acme Industries",
    "provider_name": "Durand Conseil",
    "tjm": "650.00",
    "previous_tjm": "600.00",
    "start_date": "2026-12-01",
    "end_date": "2027-05-31",
    "role": "provider",
    "interesting": True,
    "rescheduled": False,
    "rfp_closed": False,
    "reason": "Autre mission acceptée",
    "qm_at": "2026-12-03T13:30:00+00:00",
    "offer": "Flash",
    "missing": "extrait Kbis (expiré le 01/12/2026)",
    "comment": "Attestation illisible",
    "document_id": "DOC-1",
    "kind_label": "attestation de vigilance URSSAF",
    "issued_on": "2026-06-01",
    "expires_on": "2026-12-01",
    "last_valid_day": "2026-11-30",
    "month": "2026-11",
    "invoice_number": "F-2026-0042",
    "vat_mention": "",
    "amount": "12025.00",
    "fee": "601.25",
    "net_amount": "11423.75",
    "invoice_total": "14574.00",
    "paid": "14674.00",
    "overpaid_by": "100.00",
    "payout_date": "2026-12-03",
    "days": "18.5",
    "bpf_number": "BPF-P-1-2026-11",
    "document": "le BPF",
    "payout_status": "scheduled",
    "reminder_count": "2",
    "due_on": "2026-11-30",
    "new_end_date": "2027-11-30",
    "new_tjm": "700.00",
    "tjm_changed": True,
    "declined_by": "client",
    "version": 2,
    "terminated": True,
    "carried_in_invoice": "",
    "carried_in_fee": "",
    "carried_out_invoice": "",
    "carried_out_fee": "",
    "carried_from": "",
    "invoice_balance": "325.00",
    "fee_balance": "48.75",
    "balances": "325,00 € de facture (HT) (décembre 2026)",
    "signed_on": "2026-12-15",
    "effective_on": "2026-12-16",
    "transition": "purchase_order.confirmed",
}


def test_templates_are_found() -> None:
    assert len(TEMPLATES) >= 20


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize(
    "variant",
    [{}, {"interesting": False, "rescheduled": True, "rfp_closed": True, "role": "client"}],
)
def test_template_renders_one_subject_line_and_a_body(
    template: str, variant: dict[str, object]
) -> None:
    email = render(template, **{**CONTEXT, **variant})
    assert email.subject and "\n" not in email.subject
    assert len(email.body) > 40
    assert "{{" not in email.body and "{%" not in email.body
    assert "LittleBig Connection" in email.body


def test_dates_times_and_amounts_are_french() -> None:
    email = render("qm_scheduled", **CONTEXT)
    assert "jeudi 03/12/2026 à 14h30" in email.body  # 13:30 UTC is 14:30 in Paris in winter
    email = render("proposal_tjm_updated", **{**CONTEXT, "role": "client"})
    assert "600,00 €" in email.body and "650,00 €" in email.body


def test_a_subject_spanning_lines_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Such a subject would make the SMTP client refuse the message on every retry."""
    env = Environment(
        loader=DictLoader({"bad.txt.j2": "Subject: {% if x %}a{% endif %}\nsuite\n\nCorps"}),
        undefined=StrictUndefined,
    )
    monkeypatch.setattr(emails, "_environment", lambda: env)
    with pytest.raises(ValueError, match="one 'Subject: ' line"):
        emails.render("bad", x=True)


def test_a_zero_payout_wires_nothing_and_says_what_is_carried_over() -> None:
    """Issue 11 point 2: never "nous avons viré 0,00 €" (nor a negative amount)."""
    carried = {"net_amount": "0.00", "amount": "0.00", "fee": "48.75"}
    carried |= {"carried_out_fee": "48.75", "carried_out_invoice": "325.00"}
    email = render("payout_paid", **{**CONTEXT, **carried})
    assert email.subject.startswith("Aucun virement")
    assert "viré" not in email.body
    assert "325,00 € HT) est reporté sur la facture du mois suivant" in email.body
    assert "Frais reportés sur le versement du mois suivant : 48,75 €" in email.body
    validated = render("cra_validated", **{**CONTEXT, **carried})
    assert "le solde négatif de 325,00 € HT est reporté sur la facture du mois suivant" in (
        validated.body
    )
    assert "Aucun virement pour ce CRA" in validated.body


def test_an_invoice_without_vat_is_not_announced_incl_vat() -> None:
    """Issue 11 point 1: a reverse-charged or 293 B invoice has no VAT: not "TTC"."""
    mention = "Autoliquidation : TVA due par le preneur, art. 283-2 du CGI"
    email = render("cra_validated", **{**CONTEXT, "vat_mention": mention})
    assert f"12 025,00 € sans TVA ({mention})" in email.body
    assert "TTC" not in email.body
    assert "12 025,00 € TTC" in render("cra_validated", **CONTEXT).body


def test_a_later_billing_period_is_named_as_such() -> None:
    """Issue 11 point 5: a month split by a change of terms has a second CRA, "2026-07-p2"."""
    email = render("cra_validated", **{**CONTEXT, "month": "2026-07-p2"})
    assert "CRA 2026-07 (période 2) validé" in email.subject
    assert "-p2" not in email.subject + email.body
