"""The platform event contract of `docs/events.md`: envelope and one payload per type.

Every model forbids unknown fields: a platform that sends a field we do not know gets a 422
that names it, instead of a silently ignored value.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from schemas.common import (
    CountryCode,
    Days,
    Email,
    Model,
    Money,
    MoneyAboveZero,
    Month,
    NonEmptyText,
    PlatformId,
    PositiveMoney,
    Reference,
)
from schemas.enums import DocumentKind, LegalForm, PaymentOffer
from schemas.limits import EVENT_ID_LENGTH

Siren = Annotated[str, StringConstraints(pattern=r"^\d{9}$")]
VatRate = Annotated[str, StringConstraints(pattern=r"^\d{1,2}(\.\d{1,2})?$")]


AddressText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PostalCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=16, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$"
    ),
]


class PostalAddress(Model):
    """A party's postal address (registered office), printed on its invoices and BPFs.

    A mandatory invoice mention (L441-9 Code de commerce); the shape of EN 16931's BG-5 /
    BG-8 (up to three lines, postal code, city, country), so it fills Factur-X as is.
    """

    lines: list[AddressText] = Field(min_length=1, max_length=3)
    postal_code: PostalCode
    city: AddressText
    country: CountryCode

    @model_validator(mode="after")
    def _french_postal_code(self) -> PostalAddress:
        if self.country == "FR" and not re.fullmatch(r"[0-9]{5}", self.postal_code):
            raise ValueError("a French postal code has 5 digits")
        return self


LegalFormText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
]
VatNumberText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=4,
        max_length=20,
        pattern=r"^[A-Za-z]{2}[0-9A-Za-z .+*-]+$",
    ),
]


class Registration(Model):
    """A company's registration, printed on its invoices (L441-9 and R123-237 C. com.):
    legal form ("SAS", "SARL", "Lda", "Oy"…), share capital in euros and the city of the trade
    register (RCS) it is registered with."""

    form: LegalFormText
    share_capital: PositiveMoney
    rcs_city: AddressText


class Dated(Model):
    """A payload whose business date is the moment the platform says the fact happened.

    `occurred_at` is the envelope's (docs/events.md): the gateway copies it here, so the
    workflow dates the CRA's submission and validation, the invoice, a termination or a
    renewal request by it, never by when the event happened to be processed. The platform
    never sends it inside `data`. None only for an update sent without the gateway (a
    workflow test, say): the workflow's clock is then used.
    """

    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="set by the gateway from the envelope's occurred_at; never sent in data",
    )


class Approver(Model):
    id: PlatformId
    email: Email


class ClientInfo(Model):
    id: PlatformId
    name: NonEmptyText
    siren: Siren
    approvers: list[Approver] = Field(min_length=1)
    address: PostalAddress | None = None
    """Required from the platform (starter/gateway/events.py); None only in workflow histories
    recorded before the field existed, which must still replay."""
    registration: Registration | None = None
    """Required from the platform (starter/gateway/events.py): the client is a company."""


class ProviderInfo(Model):
    siren: Siren
    name: NonEmptyText
    email: Email
    country: CountryCode
    legal_form: LegalForm
    vat_franchise: bool
    address: PostalAddress | None = None
    """Required from the platform, like the client's, and in the provider's `country`
    (starter/gateway/events.py)."""
    vat_number: VatNumberText | None = None
    """Intra-community VAT number: required for a provider established in another EU state
    (reverse charge), derived from the SIREN for a French one when absent (domain.vat)."""
    registration: Registration | None = None
    """Legal form, share capital and RCS city: required from the platform for a company
    established in France (starter/gateway/events.py); an auto-entrepreneur has none (its
    invoices print "EI" beside its name)."""

    @model_validator(mode="after")
    def _franchise_is_for_auto_entrepreneurs(self) -> ProviderInfo:
        if self.vat_franchise and self.legal_form is not LegalForm.AUTO_ENTREPRENEUR:
            raise ValueError(
                "vat_franchise (art. 293 B du CGI) only applies to legal_form 'auto_entrepreneur'"
            )
        return self


class ProposalSubmitted(Model):
    proposal_id: PlatformId
    rfp_id: PlatformId
    client: ClientInfo
    provider: ProviderInfo
    tjm: PositiveMoney
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _dates_in_order(self) -> ProposalSubmitted:
        if self.end_date < self.start_date:
            raise ValueError("end_date must be on or after start_date")
        if self.tjm <= 0:
            raise ValueError("tjm must be greater than zero")
        return self


class ProposalRef(Model):
    proposal_id: PlatformId


class ProposalRead(ProposalRef):
    pass


class ProposalRated(ProposalRef):
    interesting: bool


class ProposalUpdated(ProposalRef):
    tjm: MoneyAboveZero


class ProposalCancelled(ProposalRef):
    reason: NonEmptyText


class QualificationMeetingScheduled(ProposalRef):
    at: AwareDatetime


class QualificationMeetingHeld(ProposalRef):
    pass


class ProposalRetained(ProposalRef):
    pass


class ProposalLost(ProposalRef):
    pass


MAX_FAVOURITED_BY = 1000
"""At most this many addresses in `rfp.closed.favourited_by` (a 422 beyond)."""


class RfpClosed(Model):
    rfp_id: PlatformId
    favourited_by: list[Email] = Field(
        default_factory=list,
        max_length=MAX_FAVOURITED_BY,
        description=(
            "e-mail addresses of the providers who had the RFP in their favourites: each is "
            "told once that it is closed (the FAQ), whether or not it sent a proposal"
        ),
    )

    @field_validator("favourited_by")
    @classmethod
    def _favourites_once(cls, addresses: list[str]) -> list[str]:
        """One address once, whatever its case: one e-mail each."""
        return list(dict.fromkeys(address.lower() for address in addresses))


class DocumentUploaded(Model):
    document_id: PlatformId
    provider_siren: Siren
    kind: DocumentKind
    issued_on: date
    expires_on: date | None = None
    file_ref: NonEmptyText

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> DocumentUploaded:
        if self.expires_on is not None and self.expires_on <= self.issued_on:
            raise ValueError("expires_on must be after issued_on")
        return self


class DocumentReviewed(Model):
    document_id: PlatformId
    accepted: bool
    comment: NonEmptyText | None = None

    @model_validator(mode="after")
    def _rejection_has_comment(self) -> DocumentReviewed:
        if not self.accepted and not self.comment:
            raise ValueError("comment is required when a document is rejected")
        return self


class PurchaseOrderConfirmed(ProposalRef):
    po_number: Reference


Invoicing = Literal["platform", "provider"]
"""Who issues the mission's invoices: the platform on the provider's behalf (self-billing,
generated at each CRA validation) or the provider, who imports its own (`invoice.imported`)."""


class ContractSigned(ProposalRef):
    signed_on: date
    payment_offer: PaymentOffer
    special_conditions_ref: NonEmptyText
    invoicing: Invoicing = "platform"


class ExpenseLine(Model):
    label: NonEmptyText
    amount: PositiveMoney
    vat_rate: VatRate
    receipt_ref: NonEmptyText


class OvertimeLine(Model):
    label: NonEmptyText
    amount: PositiveMoney


class CorrectionLine(Model):
    label: NonEmptyText
    amount: Money
    corrects_month: Month


class CraSubmitted(Dated):
    mission_id: PlatformId
    month: Month
    days: Days
    expenses: list[ExpenseLine] = Field(default_factory=list)
    overtime: list[OvertimeLine] = Field(default_factory=list)
    corrections: list[CorrectionLine] = Field(default_factory=list)


class CraValidated(Dated):
    mission_id: PlatformId
    month: Month
    approver_id: PlatformId


class CraRejected(Dated):
    mission_id: PlatformId
    month: Month
    approver_id: PlatformId
    comment: NonEmptyText


class InvoiceImported(Dated):
    mission_id: PlatformId
    month: Month
    number: Reference
    issued_on: date
    amount_excl_vat: PositiveMoney
    vat_amount: PositiveMoney
    file_ref: NonEmptyText


class InvoiceCancelled(Dated):
    invoice_number: Reference
    reason: NonEmptyText


class ClientPaymentReceived(Dated):
    invoice_number: Reference
    amount: MoneyAboveZero
    paid_on: date


class RenewalRequested(Dated):
    mission_id: PlatformId
    new_end_date: date
    new_tjm: MoneyAboveZero | None = None


class RenewalAccepted(Dated):
    mission_id: PlatformId
    payment_offer: PaymentOffer | None = None


class RenewalValidated(Dated):
    mission_id: PlatformId
    approver_id: PlatformId


class RenewalDeclined(Dated):
    mission_id: PlatformId
    by: Literal["client", "provider"]
    reason: NonEmptyText


class MissionTerminated(Dated):
    mission_id: PlatformId
    end_date: date
    reason: NonEmptyText


PAYLOADS: dict[str, type[Model]] = {
    "proposal.submitted": ProposalSubmitted,
    "proposal.read": ProposalRead,
    "proposal.rated": ProposalRated,
    "proposal.updated": ProposalUpdated,
    "proposal.cancelled": ProposalCancelled,
    "qualification_meeting.scheduled": QualificationMeetingScheduled,
    "qualification_meeting.held": QualificationMeetingHeld,
    "proposal.retained": ProposalRetained,
    "proposal.lost": ProposalLost,
    "rfp.closed": RfpClosed,
    "document.uploaded": DocumentUploaded,
    "document.reviewed": DocumentReviewed,
    "purchase_order.confirmed": PurchaseOrderConfirmed,
    "contract.signed": ContractSigned,
    "cra.submitted": CraSubmitted,
    "cra.validated": CraValidated,
    "cra.rejected": CraRejected,
    "invoice.imported": InvoiceImported,
    "invoice.cancelled": InvoiceCancelled,
    "client_payment.received": ClientPaymentReceived,
    "renewal.requested": RenewalRequested,
    "renewal.accepted": RenewalAccepted,
    "renewal.validated": RenewalValidated,
    "renewal.declined": RenewalDeclined,
    "mission.terminated": MissionTerminated,
}

EventType = Literal[
    "proposal.submitted",
    "proposal.read",
    "proposal.rated",
    "proposal.updated",
    "proposal.cancelled",
    "qualification_meeting.scheduled",
    "qualification_meeting.held",
    "proposal.retained",
    "proposal.lost",
    "rfp.closed",
    "document.uploaded",
    "document.reviewed",
    "purchase_order.confirmed",
    "contract.signed",
    "cra.submitted",
    "cra.validated",
    "cra.rejected",
    "invoice.imported",
    "invoice.cancelled",
    "client_payment.received",
    "renewal.requested",
    "renewal.accepted",
    "renewal.validated",
    "renewal.declined",
    "mission.terminated",
]

EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=EVENT_ID_LENGTH, pattern=r"^[A-Za-z0-9_.:-]+$"),
]


class Envelope(Model):
    """What the platform posts; `data` is validated against the payload of `type`."""

    event_id: EventId
    type: EventType
    occurred_at: AwareDatetime
    data: dict[str, object]


class Event(Model):
    """An envelope whose payload has been validated: what the dispatcher works with."""

    event_id: str
    type: str
    occurred_at: datetime
    payload: Model
