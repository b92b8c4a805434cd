"""The monthly CRA cycle `cra-<mission_id>-<YYYY-MM>`: its input, state, result and activities.

The mission workflow starts one per month of a mission in progress (a child workflow). The
provider submits the CRA (`cra.submitted`), one of the client's approvers validates it
(`cra.validated`) or sends it back with a comment (`cra.rejected`). Validation writes, in one
transaction, the validated CRA and its lines, the BPF, the invoice (or its awaiting-import
row), the payout schedule and the provider's email; then the payout workflow takes over.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import Email, Model, Money, Month, NonEmptyText, PlatformId
from schemas.enums import CraStatus, LegalForm, PaymentOffer, PayoutStatus, VatRegime
from schemas.events import CraSubmitted
from schemas.payouts import PayoutTerms

InvoiceMode = Literal["generated", "imported"]


class CraProvider(Model):
    """The provider as the CRA cycle needs it: to mail them and to issue their invoice."""

    siren: str = Field(pattern=r"^[0-9]{9}$")
    name: NonEmptyText
    email: Email
    legal_form: LegalForm = LegalForm.COMPANY
    country: str = Field(default="FR", pattern=r"^[A-Z]{2}$")
    vat_regime: VatRegime = VatRegime.FRENCH_VAT
    """From where the provider is established (domain.vat.vat_regime): what VAT its invoices
    carry and how its expenses are billed."""


class CraInput(Model):
    """Starts `cra-<mission_id>-<YYYY-MM>` (schemas.ids.cra_workflow_id).

    `mission_start` / `mission_end` are the mission's dates (the first and last months are
    pro rata); `validated_months` the months of this mission whose CRA is validated (the only
    ones a correction line may fix).

    A month split by new terms (issue 11 point 5) has one cycle per billing period: `month`
    is then the period's key (`2026-07`, `2026-07-p2`), and `mission_start` / `mission_end`
    bound the period where new terms cut the month (the first period ends the day the old
    terms end, the next starts the day the new ones begin), so the period's days, due day
    and reminders follow from the same rules (domain.mission_rules.cycle_bounds).
    """

    mission_id: PlatformId
    month: Month
    mission_start: date
    mission_end: date
    tjm: Money
    payment_offer: PaymentOffer
    provider: CraProvider
    client_id: PlatformId
    client_name: NonEmptyText
    approver_ids: list[PlatformId] = Field(min_length=1)
    invoice_mode: InvoiceMode = "generated"
    validated_months: list[Month] = Field(default_factory=list)
    terms_version: int | None = None
    start_payout: bool = Field(
        default=True, description="start the payout workflow as a child once validated"
    )


class MonthValidated(Model):
    """Payload of the `cra.month_validated` signal."""

    month: Month


class MissionPeriodChanged(Model):
    """Payload of the `cra.mission_period_changed` signal."""

    mission_end: date


class CraClosed(Model):
    """Payload of the `mission.cra_closed` signal: the month's cycle ended with `status`."""

    month: Month
    status: CraStatus


class CraTimelineEntry(BaseModel):
    at: datetime
    kind: str
    detail: str = ""


class CraState(BaseModel):
    """What the `state` query answers: the month's CRA as support sees it."""

    mission_id: str
    month: str
    status: CraStatus = CraStatus.DRAFT
    max_days: int = Field(description="calendar days of the month that belong to the mission")
    days: Decimal | None = None
    lines: CraSubmitted | None = Field(default=None, description="the last submission")
    rejection_comment: str | None = None
    submitted_at: datetime | None = None
    rejected_at: datetime | None = None
    validated_at: datetime | None = None
    validated_on: date | None = None
    approver_id: str | None = None
    reminders_sent: int = 0
    next_reminder_at: datetime | None = None
    bpf_number: str | None = None
    invoice_number: str | None = None
    payout_status: PayoutStatus | None = None
    payout_date: date | None = None
    timeline: list[CraTimelineEntry] = Field(default_factory=list)


class CraResult(BaseModel):
    """What a finished CRA cycle returns (the mission workflow adds the month to its
    validated months and keeps the billing references)."""

    mission_id: str
    month: str
    status: CraStatus
    validated_on: date | None = None
    days: Decimal | None = None
    bpf_number: str | None = None
    invoice_number: str | None = None
    amount_excl_vat: Decimal | None = None
    amount_incl_vat: Decimal | None = None
    payout_status: PayoutStatus | None = None
    payout_date: date | None = None
    payout_workflow_id: str | None = None


class CraUpdateAccepted(BaseModel):
    """What an update handler answers once the event is applied to the CRA."""

    mission_id: str
    month: str
    status: CraStatus


# --- Activities -------------------------------------------------------------------------------

CraTransitionKind = Literal["submitted", "rejected", "reminder"]


class CraTransition(BaseModel):
    """A submission, a rejection or a reminder: the `cras` row (and its lines), the timeline
    row and the provider's email, in one transaction. `key` is the timeline key."""

    model_config = ConfigDict(frozen=True)

    key: str
    kind: CraTransitionKind
    at: datetime
    mission_id: str
    month: str
    status: CraStatus
    cra: CraSubmitted | None = Field(default=None, description="the submission, if any")
    approver_id: str | None = None
    comment: str | None = None
    provider_email: str
    email_template: str | None = None
    email_context: dict[str, str] = Field(default_factory=dict)


class CraValidation(BaseModel):
    """Everything the one billing transaction of a validated CRA needs."""

    model_config = ConfigDict(frozen=True)

    key: str
    at: datetime
    validated_on: date = Field(description="validation date, Europe/Paris")
    mission_id: str
    month: str
    cra: CraSubmitted
    approver_id: str
    tjm: Decimal
    payment_offer: PaymentOffer
    provider: CraProvider
    client_name: str
    invoice_mode: InvoiceMode
    service_start: date
    service_end: date
    terms_version: int | None = None
    email_context: dict[str, str] = Field(default_factory=dict)


class CraValidationResult(BaseModel):
    """What the billing transaction wrote (or had written, on a retry): the BPF, the invoice
    and the payout's terms, computed once (domain.payouts.payout_terms) and carried to the
    payout workflow."""

    applied: bool = Field(description="False when the validation had already been written")
    bpf_number: str
    invoice_number: str | None = None
    terms: PayoutTerms
    outbox_keys: list[str] = Field(default_factory=list)
    render_task_queue: str | None = Field(
        default=None,
        description="where the cycle renders the month's files next (None: its own queue)",
    )

    # Read from the terms, never stored twice.
    @property
    def amount_excl_vat(self) -> Decimal:
        return self.terms.amount_excl_vat

    @property
    def amount_incl_vat(self) -> Decimal:
        return self.terms.amount

    @property
    def payout_status(self) -> PayoutStatus:
        return self.terms.status

    @property
    def payout_date(self) -> date | None:
        return self.terms.payout_date
