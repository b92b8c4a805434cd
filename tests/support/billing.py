"""The parties and the CRA of the billing documents' tests and of bench/render.py: a company
under French VAT billing Acme for a July with overtime, a correction and an expense."""

from __future__ import annotations

from decimal import Decimal

from schemas.billing import Party
from schemas.events import CorrectionLine, CraSubmitted, ExpenseLine, OvertimeLine

TJM = Decimal("650.00")

SELLER = Party(
    name="Dupont Conseil SARL",
    address_lines=["12 rue de la Paix", "3e étage"],
    postcode="75002",
    city="Paris",
    siren="732829320",
    siret="73282932000074",
    vat_number="FR40732829320",
)
BUYER = Party(
    name="Acme Industries SA",
    address_lines=["1 avenue de l'Europe"],
    postcode="69001",
    city="Lyon",
    siren="542107651",
    siret="54210765100037",
    vat_number="FR11542107651",
)
CRA = CraSubmitted(
    mission_id="M-1",
    month="2026-07",
    days=Decimal("20.5"),
    overtime=[OvertimeLine(label="Astreinte du 14 juillet", amount=Decimal("200.00"))],
    corrections=[
        CorrectionLine(
            label="Jour facturé en trop", amount=Decimal("-325.00"), corrects_month="2026-06"
        )
    ],
    expenses=[
        ExpenseLine(
            label="Train Paris-Lyon", amount=Decimal("120.00"), vat_rate="10", receipt_ref="R-7"
        )
    ],
)
