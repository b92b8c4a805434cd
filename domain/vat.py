"""Which VAT a provider's invoice carries: it follows where the provider is established.

The client is always a French company (the platform's clients are identified by their
SIREN). The service is taxed in France (art. 259-1° CGI, the client's establishment); who
pays the VAT depends on the provider:

- established in France, not under the franchise: the provider charges French VAT (20 %);
- established in France under the franchise (auto-entrepreneur, art. 293 B CGI): no VAT, the
  293 B mention; its expenses are re-billed at what they cost it, VAT included, since it
  cannot recover that VAT;
- established in another EU state, or outside the EU: reverse charge — no VAT on the
  invoice, the client accounts for it ("Autoliquidation", art. 283-2 CGI); the invoice names
  both parties' VAT numbers (art. 242 nonies A CGI), the EU provider's being mandatory
  (art. 196 of directive 2006/112/CE). Factur-X category `AE`.

VAT numbers: a French one is derived from the SIREN when the platform does not send it
(its key is the one python-stdnum checks); an EU provider's is required and checked by
python-stdnum (format and check digits of its state); a provider outside the EU may have
none.
"""

from __future__ import annotations

from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat as eu_vat
from stdnum.fr import tva as fr_tva

from domain.errors import DomainError
from schemas.enums import VatRegime

__all__ = ["VatRegime"]

FRANCE = "FR"

EU_MEMBER_STATES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)
"""ISO 3166 codes of the 27 member states (Greece's VAT numbers start with EL)."""

VAT_FRANCHISE_MENTION = "TVA non applicable, art. 293 B du CGI"

REVERSE_CHARGE_MENTION = "Autoliquidation"
"""The words art. 242 nonies A I-13° CGI requires on a reverse-charged invoice."""

REVERSE_CHARGE_LAW = {
    True: "TVA due par le preneur, art. 283-2 du CGI et art. 196 de la directive 2006/112/CE",
    False: "TVA due par le preneur, art. 283-2 du CGI",
}
"""Why the client owes the VAT, keyed by whether the provider is established in the EU."""

REVERSE_CHARGE_EXEMPTION_CODE = "VATEX-EU-AE"
"""BT-121 of a reverse-charged invoice (EN 16931 code list VATEX)."""

FRANCHISE_EXEMPTION_CODE = "VATEX-FR-FRANCHISE"
"""BT-121 for art. 293 B du CGI (franchise en base de TVA)."""


def vat_category(regime: VatRegime) -> str:
    """EN 16931 VAT category code (BT-151) of the lines of an invoice under `regime` (a 0 %
    line of a VAT-charging provider is "Z")."""
    if regime is VatRegime.FRANCHISE:
        return "E"
    return "AE" if regime.reverse_charge else "S"


def vat_mention(regime: VatRegime) -> str | None:
    """The VAT mention an invoice under `regime` must print, if any."""
    if regime is VatRegime.FRANCHISE:
        return VAT_FRANCHISE_MENTION
    if regime.reverse_charge:
        eu = regime is VatRegime.REVERSE_CHARGE_EU
        return f"{REVERSE_CHARGE_MENTION} : {REVERSE_CHARGE_LAW[eu]}"
    return None


def exemption_code(regime: VatRegime) -> str | None:
    """BT-121, the exemption reason code, when no VAT is charged."""
    if regime is VatRegime.FRANCHISE:
        return FRANCHISE_EXEMPTION_CODE
    return REVERSE_CHARGE_EXEMPTION_CODE if regime.reverse_charge else None


def regime_label_fr(regime: VatRegime) -> str:
    return {
        VatRegime.FRENCH_VAT: "TVA française",
        VatRegime.FRANCHISE: "franchise en base de TVA (art. 293 B du CGI)",
        VatRegime.REVERSE_CHARGE_EU: "autoliquidation (prestataire établi dans l'UE)",
        VatRegime.REVERSE_CHARGE_NON_EU: "autoliquidation (prestataire établi hors UE)",
    }[regime]


def in_eu(country: str) -> bool:
    return country.upper() in EU_MEMBER_STATES


def vat_regime(country: str, vat_franchise: bool) -> VatRegime:
    """The regime of a provider established in `country` (ISO code)."""
    country = country.upper()
    if country == FRANCE:
        return VatRegime.FRANCHISE if vat_franchise else VatRegime.FRENCH_VAT
    if vat_franchise:
        raise DomainError(
            f"vat_franchise (art. 293 B du CGI) is French: a provider established in {country} "
            "cannot claim it; send vat_franchise false"
        )
    return VatRegime.REVERSE_CHARGE_EU if in_eu(country) else VatRegime.REVERSE_CHARGE_NON_EU


def french_vat_number(siren: str) -> str:
    """The French intra-community VAT number of a SIREN: "FR", its key, the SIREN.

    The key is (SIREN × 100 + 12) mod 97, the check python-stdnum's `fr.tva` applies.
    """
    return f"FR{int(siren + '12') % 97:02d}{siren}"


def _vat_prefix(country: str) -> str:
    return "EL" if country == "GR" else country


def provider_vat_number(
    country: str, siren: str, vat_number: str | None, *, vat_franchise: bool
) -> str | None:
    """The provider's VAT number as invoices print it (compact), checked; DomainError says
    what is wrong.

    France: the one sent must be a valid French number of this SIREN; none sent: derived
    from the SIREN; none at all under the franchise. Another EU state: required, valid for
    that state (python-stdnum). Outside the EU: optional, kept as sent (compact, upper case).
    """
    country = country.upper()
    if country == FRANCE:
        if vat_franchise:
            if vat_number is not None:
                raise DomainError(
                    "a provider under the VAT franchise (art. 293 B) has no VAT number: "
                    "drop provider.vat_number or set vat_franchise false"
                )
            return None
        if vat_number is None:
            return french_vat_number(siren)
        number = "".join(vat_number.split()).upper()
        if not number.startswith(FRANCE) or not fr_tva.is_valid(number):
            raise DomainError(
                f"provider.vat_number {vat_number!r} is not a valid French VAT number"
            )
        if number[-9:] != siren:
            raise DomainError(
                f"provider.vat_number {vat_number!r} is not the VAT number of SIREN {siren} "
                f"(expected {french_vat_number(siren)}); send the provider's own number"
            )
        return number
    if in_eu(country):
        prefix = _vat_prefix(country)
        if vat_number is None:
            raise DomainError(
                f"provider.vat_number is required for a provider established in {country}: "
                f"the reverse-charged invoice must print its intra-community VAT number "
                f"(starting with {prefix})"
            )
        number = eu_vat.compact(vat_number).upper()
        if not number.startswith(prefix):
            raise DomainError(
                f"provider.vat_number {vat_number!r} is not a VAT number of {country}: it must "
                f"start with {prefix}"
            )
        try:
            eu_vat.validate(number)
        except stdnum_errors.ValidationError as exc:
            raise DomainError(
                f"provider.vat_number {vat_number!r} is not a valid VAT number of {country} "
                f"({str(exc).lower().rstrip('.')}); check it against the provider's VIES record"
            ) from None
        return number
    if vat_number is None:
        return None
    return "".join(vat_number.split()).upper()
