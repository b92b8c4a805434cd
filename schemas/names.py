"""Every name by which one part of the system reaches a workflow or an activity: workflow
types, updates, signals, queries and activities, in one place.

The gateway, the support CLI, the worker and the workflows all read them here, so a renamed
handler cannot leave a caller behind. Event names double as update names: the gateway
delivers a platform event `renewal.validated` as the update `renewal.validated`.
"""

from __future__ import annotations

# --- Workflow types ---------------------------------------------------------------------------

MISSION_WORKFLOW = "MissionWorkflow"
CRA_WORKFLOW = "CraWorkflow"
PAYOUT_WORKFLOW = "PayoutWorkflow"
PROVIDER_WORKFLOW = "ProviderComplianceWorkflow"

# --- Queries ----------------------------------------------------------------------------------

STATE_QUERY = "state"
"""Every workflow answers its whole state model under this name."""
COMPLIANCE_QUERY = "compliance"
"""The provider workflow's compliance view on a given day."""

# --- The mission workflow (`mission-<proposal id>`) -------------------------------------------

PROPOSAL_READ = "proposal.read"
PROPOSAL_RATED = "proposal.rated"
PROPOSAL_UPDATED = "proposal.updated"
PROPOSAL_CANCELLED = "proposal.cancelled"
QUALIFICATION_MEETING_SCHEDULED = "qualification_meeting.scheduled"
QUALIFICATION_MEETING_HELD = "qualification_meeting.held"
PROPOSAL_RETAINED = "proposal.retained"
PROPOSAL_LOST = "proposal.lost"
RFP_CLOSED = "rfp.closed"
PURCHASE_ORDER_CONFIRMED = "purchase_order.confirmed"
CONTRACT_SIGNED = "contract.signed"
RENEWAL_REQUESTED = "renewal.requested"
RENEWAL_ACCEPTED = "renewal.accepted"
RENEWAL_VALIDATED = "renewal.validated"
RENEWAL_DECLINED = "renewal.declined"
MISSION_TERMINATED = "mission.terminated"

MISSION_UPDATES = (
    PROPOSAL_READ,
    PROPOSAL_RATED,
    PROPOSAL_UPDATED,
    PROPOSAL_CANCELLED,
    QUALIFICATION_MEETING_SCHEDULED,
    QUALIFICATION_MEETING_HELD,
    PROPOSAL_RETAINED,
    PROPOSAL_LOST,
    PURCHASE_ORDER_CONFIRMED,
    CONTRACT_SIGNED,
    RENEWAL_REQUESTED,
    RENEWAL_ACCEPTED,
    RENEWAL_VALIDATED,
    RENEWAL_DECLINED,
    MISSION_TERMINATED,
)
"""Events the gateway delivers to one mission as an update of the same name (`rfp.closed`
reaches every mission of a request for proposals, one update each)."""

CRA_CLOSED = "mission.cra_closed"
"""Signal from a CRA cycle to its mission: the month is validated or closed."""
COMPLIANCE_CHANGED = "provider_compliance_changed"
"""Signal from the provider workflow to the missions that watch it."""

# --- The CRA cycle workflow (`cra-<mission id>-<YYYY-MM>`) ------------------------------------

CRA_SUBMITTED = "cra.submitted"
CRA_VALIDATED = "cra.validated"
CRA_REJECTED = "cra.rejected"
CRA_UPDATES = (CRA_SUBMITTED, CRA_VALIDATED, CRA_REJECTED)

MONTH_VALIDATED = "cra.month_validated"
"""Signal from the mission to its cycles: a month was validated (keeps cycles in order)."""
MISSION_PERIOD_CHANGED = "cra.mission_period_changed"
"""Signal from the mission to an open cycle: its days changed (termination, renewal)."""

# --- The payout workflow (`payout-<mission id>-<YYYY-MM>`) ------------------------------------

CLIENT_PAYMENT_RECEIVED = "client_payment.received"
INVOICE_IMPORTED = "invoice.imported"
INVOICE_CANCELLED = "invoice.cancelled"

# --- The provider compliance workflow (`provider-<SIREN>`) ------------------------------------

DOCUMENT_UPLOADED = "document.uploaded"
DOCUMENT_REVIEWED = "document.reviewed"
WATCH = "watch"
UNWATCH = "unwatch"

# --- Activities -------------------------------------------------------------------------------

RECORD_PROPOSAL = "record_proposal"
RECORD_MISSION_TRANSITION = "record_mission_transition"
WATCH_PROVIDER = "watch_provider"
OPEN_CRA_CYCLE = "open_cra_cycle"
START_PAYOUT = "start_payout"
SIGNAL_WORKFLOW = "signal_workflow"
"""Signals a workflow by id (its current run) from a local activity: one marker in the
sender's history where a workflow's own external signal costs two events and a task."""
DELIVER_OUTBOX = "deliver_outbox"
RECORD_CRA_TRANSITION = "record_cra_transition"
RECORD_CRA_VALIDATION = "record_cra_validation"
RECORD_PAYOUT_TRANSITION = "record_payout_transition"
RECORD_CLIENT_PAYMENT = "record_client_payment"
RECORD_INVOICE_IMPORT = "record_invoice_import"
RECORD_DOCUMENT_UPLOAD = "record_document_upload"
RECORD_DOCUMENT_REVIEW = "record_document_review"
RECORD_DOCUMENT_EXPIRY = "record_document_expiry"
RECORD_FAILED_TRANSITION = "record_failed_transition"
ISSUE_BILLING_DOCUMENTS = "issue_billing_documents"
"""Renders and stores a validated month's BPF and invoice (Factur-X) files, right after the
validation committed them: on the render task queue (`CONTRACTING_RENDER_TASK_QUEUE`)."""

# --- Error types --------------------------------------------------------------------------------

DATA_REFUSED = "DataRefused"
"""The `ApplicationError` type of an activity whose data the database refuses for good (a
length, a precision, a CHECK: activities/data_errors.py): non-retryable."""
