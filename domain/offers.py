"""Payment offers: the rule table and who may choose which offer.

Since 2025-04-28, providers based in France are paid on fixed dates (Basic, Express, Flash);
contracts signed before that date and providers outside France keep back-to-back payment
(after the client pays), with immediate payment as an option. Every number that defines an
offer (delays, fees) lives in `OFFER_RULES`, so a product change is one edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from domain.errors import IneligibleOffer
from schemas.enums import PaymentOffer

FIXED_DATE_OFFERS_FROM = date(2025, 4, 28)
"""Contracts signed on or after this date (provider in France) use the fixed-date offers."""

FRANCE = "FR"


@dataclass(frozen=True, slots=True)
class OfferRule:
    """What an offer promises: when the provider is paid and what it costs."""

    offer: PaymentOffer
    label: str
    """Name shown to people ("Flash", "paiement immédiat")."""
    fixed_date: bool
    """Paid on a date known at CRA validation, whatever the client does."""
    delay_calendar_days: int | None
    """Basic and Express: calendar days after the CRA validation."""
    delay_business_days: int | None
    """Flash: business days after validation; immediate: 0 (first business day on or after)."""
    fee_rate_of_tjm: Decimal
    """Fee per day invoiced, as a fraction of the TJM (0.05 for Flash)."""
    fee_per_day: Decimal
    """Flat fee in euros per day of service (20.00 for immediate payment)."""


OFFER_RULES: Mapping[PaymentOffer, OfferRule] = MappingProxyType(
    {
        PaymentOffer.BASIC: OfferRule(
            offer=PaymentOffer.BASIC,
            label="Basic",
            fixed_date=True,
            delay_calendar_days=60,
            delay_business_days=None,
            fee_rate_of_tjm=Decimal("0"),
            fee_per_day=Decimal("0.00"),
        ),
        PaymentOffer.EXPRESS: OfferRule(
            offer=PaymentOffer.EXPRESS,
            label="Express",
            fixed_date=True,
            delay_calendar_days=30,
            delay_business_days=None,
            fee_rate_of_tjm=Decimal("0.025"),
            fee_per_day=Decimal("0.00"),
        ),
        PaymentOffer.FLASH: OfferRule(
            offer=PaymentOffer.FLASH,
            label="Flash",
            fixed_date=True,
            delay_calendar_days=None,
            delay_business_days=3,
            fee_rate_of_tjm=Decimal("0.05"),
            fee_per_day=Decimal("0.00"),
        ),
        PaymentOffer.BACK_TO_BACK: OfferRule(
            offer=PaymentOffer.BACK_TO_BACK,
            label="back-to-back",
            fixed_date=False,
            delay_calendar_days=None,
            delay_business_days=None,
            fee_rate_of_tjm=Decimal("0"),
            fee_per_day=Decimal("0.00"),
        ),
        PaymentOffer.IMMEDIATE: OfferRule(
            offer=PaymentOffer.IMMEDIATE,
            label="paiement immédiat",
            fixed_date=False,
            delay_calendar_days=None,
            delay_business_days=0,
            fee_rate_of_tjm=Decimal("0"),
            fee_per_day=Decimal("20.00"),
        ),
    }
)

FIXED_DATE_OFFERS: tuple[PaymentOffer, ...] = tuple(
    rule.offer for rule in OFFER_RULES.values() if rule.fixed_date
)
LEGACY_OFFERS: tuple[PaymentOffer, ...] = tuple(
    rule.offer for rule in OFFER_RULES.values() if not rule.fixed_date
)


def offer_rule(offer: PaymentOffer) -> OfferRule:
    """The rule of `offer` (accepts the enum or its string value)."""
    return OFFER_RULES[PaymentOffer(offer)]


def is_fixed_date_offer(offer: PaymentOffer) -> bool:
    return offer_rule(offer).fixed_date


def _normalise_country(country: str) -> str:
    code = country.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise IneligibleOffer(
            f"provider country must be a two-letter ISO code such as 'FR', got {country!r}"
        )
    return code


def fixed_date_offers_apply(contract_signed_on: date, provider_country: str) -> bool:
    """True for a provider in France with a contract signed on or after 2025-04-28."""
    return (
        _normalise_country(provider_country) == FRANCE
        and contract_signed_on >= FIXED_DATE_OFFERS_FROM
    )


def eligible_offers(contract_signed_on: date, provider_country: str) -> tuple[PaymentOffer, ...]:
    """The offers the provider may choose for a contract signed on `contract_signed_on`."""
    if fixed_date_offers_apply(contract_signed_on, provider_country):
        return FIXED_DATE_OFFERS
    return LEGACY_OFFERS


def check_offer_eligibility(
    offer: PaymentOffer, contract_signed_on: date, provider_country: str
) -> None:
    """Raise `IneligibleOffer`, saying why and what is possible, if `offer` is not allowed."""
    offer = PaymentOffer(offer)
    country = _normalise_country(provider_country)
    allowed = eligible_offers(contract_signed_on, country)
    if offer in allowed:
        return
    names = ", ".join(o.value for o in allowed)
    cutoff = FIXED_DATE_OFFERS_FROM.isoformat()
    if is_fixed_date_offer(offer):
        if country != FRANCE:
            why = f"the provider is based outside France ({country})"
        else:
            why = f"the contract was signed on {contract_signed_on.isoformat()}, before {cutoff}"
        raise IneligibleOffer(
            f"offer '{offer.value}' is not available: fixed-date offers (basic, express, flash) "
            f"require a provider based in France and a contract signed on or after {cutoff}, "
            f"and {why}; choose one of: {names}"
            + (
                f" (a new contract signed on or after {cutoff} moves a mission in progress to "
                "fixed dates: send it as contract.signed once the mission has started)"
                if country == FRANCE
                else ""
            )
        )
    raise IneligibleOffer(
        f"offer '{offer.value}' is not available: it is only for contracts signed before "
        f"{cutoff} or providers outside France, and this contract (signed on "
        f"{contract_signed_on.isoformat()}, provider in {country}) is paid on fixed dates; "
        f"choose one of: {names}"
    )
