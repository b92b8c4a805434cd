"""Statuses and kinds shared by every layer (string enums, so they serialise as their value)."""

from __future__ import annotations

from enum import StrEnum


class PaymentOffer(StrEnum):
    """How and when the provider is paid (domain-rules.md, Payment)."""

    BASIC = "basic"
    EXPRESS = "express"
    FLASH = "flash"
    BACK_TO_BACK = "back_to_back"
    IMMEDIATE = "immediate"


class MissionStage(StrEnum):
    """Value of the `MissionStage` search attribute."""

    PROPOSAL = "proposal"
    QUALIFICATION = "qualification"
    LEGAL_VERIFICATION = "legal_verification"
    TO_START = "to_start"
    IN_PROGRESS = "in_progress"
    RENEWAL_PENDING = "renewal_pending"
    COMPLETED = "completed"
    LOST = "lost"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"


class RenewalStep(StrEnum):
    """Where a pending renewal stands (domain/renewals.py)."""

    REQUESTED = "requested"
    """The client asked; the provider has to accept (or decline)."""
    ACCEPTED = "accepted"
    """The provider accepted; the client's approver has to validate."""
    VALIDATED = "validated"
    """Validated: waits for the provider's legal verification before it takes effect."""


class ProposalStatus(StrEnum):
    """A proposal's status as the provider sees it."""

    SENT = "sent"
    READ = "read"
    INTERESTING = "interesting"
    NOT_INTERESTING = "not_interesting"
    QUALIFICATION_MEETING = "qualification_meeting"
    RETAINED = "retained"
    LOST = "lost"
    CANCELLED = "cancelled"


class LegalForm(StrEnum):
    COMPANY = "company"
    AUTO_ENTREPRENEUR = "auto_entrepreneur"


class VatRegime(StrEnum):
    """The VAT treatment of a provider's invoices, from where it is established
    (`domain.vat.vat_regime`; the rules in docs/domain-rules.md)."""

    FRENCH_VAT = "french_vat"
    """Established in France, registered: French VAT at the standard rate."""
    FRANCHISE = "franchise"
    """Auto-entrepreneur under art. 293 B CGI: no VAT, expenses re-billed VAT included."""
    REVERSE_CHARGE_EU = "reverse_charge_eu"
    """Established in another EU state: no VAT, "Autoliquidation", both VAT numbers."""
    REVERSE_CHARGE_NON_EU = "reverse_charge_non_eu"
    """Established outside the EU: no French VAT, "Autoliquidation"."""

    @property
    def charges_vat(self) -> bool:
        return self is VatRegime.FRENCH_VAT

    @property
    def reverse_charge(self) -> bool:
        return self in (VatRegime.REVERSE_CHARGE_EU, VatRegime.REVERSE_CHARGE_NON_EU)


class DocumentKind(StrEnum):
    """Provider legal documents (D8222-5, D8254-2 Code du travail)."""

    URSSAF_VIGILANCE = "urssaf_vigilance"
    KBIS = "kbis"
    SIRENE_SITUATION = "sirene_situation"
    SWORN_STATEMENT = "sworn_statement"
    FOREIGN_WORKERS_LIST = "foreign_workers_list"


class InvoiceStatus(StrEnum):
    AWAITING_IMPORT = "awaiting_import"
    UNDER_VERIFICATION = "under_verification"
    BLOCKED = "blocked"
    IN_PAYMENT = "in_payment"
    PAID = "paid"
    CANCELLED = "cancelled"


class CraStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    VALIDATED = "validated"


class PayoutStatus(StrEnum):
    SCHEDULED = "scheduled"
    WAITING_CLIENT_PAYMENT = "waiting_client_payment"
    WAITING_INVOICE_IMPORT = "waiting_invoice_import"
    PAID = "paid"
    CANCELLED = "cancelled"
    FLAGGED = "flagged"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"
    """The SMTP server refused it for good (5xx, every recipient refused): ops resend it."""
