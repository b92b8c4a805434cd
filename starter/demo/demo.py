"""`contracting demo`: walk demo missions through contracting and billing with signed events.

Fifteen proposals of one client, from the four demo providers (a French company, a French
auto-entrepreneur, a Finnish company, a Portuguese company), each left at a different stage:

1. Durand Conseil: read, interesting, QM scheduled and held, retained, documents (the
   URSSAF certificate rejected with a comment, then replaced and accepted), purchase order,
   contract (Flash), start date today → `in_progress`.
2. Léa Petit EI (auto-entrepreneur: a Sirene notice instead of a Kbis): read, interesting,
   retained, documents, purchase order, contract (Express), starts on the 1st of next month
   → `to_start`.
3. Nordic Data Oy (Finland): retained, Flash refused (provider outside France), contract
   back-to-back, one document left under review (accepted later, for mission 11), no
   purchase order yet → `legal_verification`.
4. Durand Conseil: read, interesting, QM in three days → `qualification`.
5. Léa Petit EI: read → `proposal`.
6. Léa Petit EI, on mission 1's RFP, which closes: not retained → `lost`.
7. Nordic Data Oy withdraws, with a reason → `cancelled`.
8-12. One mission per payment offer (Basic and Flash: Durand Conseil; Express: Léa Petit EI;
   back-to-back: Lisboa Dev Lda, Portugal; immediate payment: Nordic Data Oy, Finland — both
   reverse-charged, "Autoliquidation"), started on the first day of
   last month, last month's CRA validated today: BPF, invoice and payout workflow on its real
   date → `in_progress` (`add_billed_missions`).
13. Durand Conseil, Express, contract signed with `invoicing: provider` (manual import): last
   month's CRA validated today generates no invoice; an import dated tomorrow is refused,
   the provider's invoice dated last month's last business day is imported and the payout
   is scheduled (`add_imported_invoice_mission`).
14. Durand Conseil, Basic, started three months ago: its middle month (2 days and a
   −3,000 € correction of the first) cannot absorb the correction, so its invoice is 0 € and
   the 1,800 € left are carried to the last month's invoice as "Report du solde négatif"
   (`add_carried_over_mission`).
15. Durand Conseil, Express at 600 € from the 1st to the 15th of last month, renewed to the
   month's end at 700 € under Flash: last month is billed in two periods, `YYYY-MM` and
   `YYYY-MM-p2`, each with its own CRA, BPF, invoice and payout (`add_mid_month_renewal`).

A scenario is a function of the `Scenario` built from its steps (`submit`, `proposal`,
`documents`, `sign`, `cra`), called from `build_scenario`: add one (a renewal…) the same way.
The run ends with the missions' table, then the payout workflows' (offer, status, date).

Every event goes through the gateway (`POST /events`) signed like the platform signs it;
before a mission's next event, the demo polls `GET /missions/{id}` until the workflow shows
the previous one, because the worker acts asynchronously. Ids, dates and `occurred_at`
derive from the run date only, so a second run on the same day re-sends byte-identical
events: the gateway answers `200 duplicate`, and a step a mission is already past is
reported as such, never as an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import typer

from domain.calendar import is_business_day, previous_business_day_on_or_before
from domain.cra import submission_opens_on
from domain.invoices import invoice_amounts_for_cra
from domain.vat import vat_regime
from schemas.enums import MissionStage, ProposalStatus, VatRegime
from schemas.events import CraSubmitted
from schemas.mission import MissionView
from settings import get_settings
from starter.gateway.client import GatewayClient, GatewayResponse
from starter.gateway.read_access import client_read_token

PARIS = ZoneInfo("Europe/Paris")
WAIT_TIMEOUT = 30.0
"""Seconds a step may take to show in its mission's state before the demo gives up on it."""
POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class DemoProvider:
    siren: str
    name: str
    email: str
    country: str
    legal_form: str
    vat_franchise: bool
    vat_number: str | None = None
    registration: dict[str, str] | None = None

    @property
    def vat_regime(self) -> VatRegime:
        return vat_regime(self.country, self.vat_franchise)

    def as_event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "siren": self.siren,
            "name": self.name,
            "email": self.email,
            "country": self.country,
            "legal_form": self.legal_form,
            "vat_franchise": self.vat_franchise,
        }
        if self.vat_number is not None:
            data["vat_number"] = self.vat_number
        if self.registration is not None:
            data["registration"] = self.registration
        return data


CLIENT: dict[str, Any] = {
    "id": "CLI-ACME",
    "name": "Acme Industries",
    "siren": "325437259",
    "approvers": [{"id": "APR-ACME-1", "email": "claire.martin@acme.example"}],
    "registration": {"form": "SA", "share_capital": "1200000.00", "rcs_city": "Paris"},
}

DURAND = DemoProvider(
    "200780963",
    "Durand Conseil",
    "paul@durand-conseil.example",
    "FR",
    "company",
    False,
    registration={"form": "SARL", "share_capital": "10000.00", "rcs_city": "Lyon"},
)
LEA = DemoProvider(
    "518554019", "Léa Petit EI", "lea.petit@example.fr", "FR", "auto_entrepreneur", True
)
NORDIC = DemoProvider(
    "847144854",
    "Nordic Data Oy",
    "billing@nordicdata.example",
    "FI",
    "company",
    False,
    vat_number="FI20774740",
)
LISBOA = DemoProvider(
    "552081317",
    "Lisboa Dev Lda",
    "faturas@lisboadev.example",
    "PT",
    "company",
    False,
    vat_number="PT501964843",
)
PROVIDERS = (DURAND, LEA, NORDIC, LISBOA)

POSTAL_ADDRESSES: dict[str, dict[str, Any]] = {
    CLIENT["siren"]: {
        "lines": ["12 rue de la Paix"],
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
    DURAND.siren: {
        "lines": ["8 quai Saint-Vincent"],
        "postal_code": "69001",
        "city": "Lyon",
        "country": "FR",
    },
    LEA.siren: {
        "lines": ["3 impasse des Lilas"],
        "postal_code": "33000",
        "city": "Bordeaux",
        "country": "FR",
    },
    NORDIC.siren: {
        "lines": ["Mannerheimintie 12"],
        "postal_code": "00100",
        "city": "Helsinki",
        "country": "FI",
    },
    LISBOA.siren: {
        "lines": ["Rua Augusta 100"],
        "postal_code": "1100-053",
        "city": "Lisboa",
        "country": "PT",
    },
}
"""Registered offices (a mandatory invoice mention), by SIREN."""


def proposal_data(
    proposal_id: str,
    rfp_id: str,
    provider: DemoProvider,
    tjm: str,
    start: date,
    end: date,
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `data` of a `proposal.submitted` event: the one place the demo and the simulation
    (`starter/demo/simulate.py`) build it, so a new contract field is a one-line change."""
    client_data = dict(client or CLIENT)
    client_data.setdefault("address", POSTAL_ADDRESSES.get(client_data["siren"]))
    provider_data = provider.as_event_data()
    provider_data.setdefault("address", POSTAL_ADDRESSES.get(provider.siren))
    return {
        "proposal_id": proposal_id,
        "rfp_id": rfp_id,
        "client": client_data,
        "provider": provider_data,
        "tjm": tjm,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
    }


# --- What a step waits for (monotone: once true, it stays true on the mission's path) -------

_STAGE_ORDER = [
    MissionStage.PROPOSAL,
    MissionStage.QUALIFICATION,
    MissionStage.LEGAL_VERIFICATION,
    MissionStage.TO_START,
    MissionStage.IN_PROGRESS,
]

Check = Callable[[MissionView], bool]


def recorded(view: MissionView) -> bool:
    """The proposal is in the database (the workflow notes it once its activity committed)."""
    return any(entry.kind == "proposal.submitted" for entry in view.state.timeline)


def reached(stage: MissionStage) -> Check:
    """At `stage` or later on the way to `in_progress` (lost and cancelled: exactly there)."""

    def check(view: MissionView) -> bool:
        current = view.state.stage
        if stage not in _STAGE_ORDER or current not in _STAGE_ORDER:
            return current is stage
        return _STAGE_ORDER.index(current) >= _STAGE_ORDER.index(stage)

    return check


_STATUS_RANK = {
    ProposalStatus.SENT: 0,
    ProposalStatus.READ: 1,
    ProposalStatus.INTERESTING: 2,
    ProposalStatus.NOT_INTERESTING: 2,
    ProposalStatus.QUALIFICATION_MEETING: 3,
    ProposalStatus.RETAINED: 4,
}


def status_at_least(status: ProposalStatus) -> Check:
    """The proposal is at `status` or further on the way to retained."""

    def check(view: MissionView) -> bool:
        current = _STATUS_RANK.get(view.state.proposal_status)
        return current is not None and current >= _STATUS_RANK[status]

    return check


def timeline_has(kind: str, *, count: int = 1) -> Check:
    return lambda view: sum(e.kind == kind for e in view.state.timeline) >= count


def document_is(document_id: str, *statuses: str) -> Check:
    def check(view: MissionView) -> bool:
        docs = view.documents.documents if view.documents else []
        return any(d.document_id == document_id and d.status in statuses for d in docs)

    return check


def provider_misses_only(*items: str) -> Check:
    """Legal verification waits on exactly these provider items (and whatever the client
    still owes)."""
    return lambda view: view.missing.get("provider") == list(items)


# --- The scenario ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    event: dict[str, Any]
    mission: str
    until: Check | None = None
    expect_refusal: bool = False
    note: str = ""
    invoice_of: str | None = None
    """A month whose invoice number the event's `invoice_number` takes, read from the
    mission's documents when the step runs (the worker allocates it)."""


@dataclass
class Scenario:
    today: date
    steps: list[Step] = field(default_factory=list)
    missions: dict[str, DemoProvider] = field(default_factory=dict)

    @property
    def stamp(self) -> str:
        return self.today.strftime("%Y%m%d")

    def pid(self, number: int) -> str:
        return f"PROP-{self.stamp}-{number}"

    def rfp(self, number: int) -> str:
        return f"RFP-{self.stamp}-{number}"

    def at(self, days: int, hour: int = 0, minute: int = 0) -> datetime:
        """A Paris wall-clock instant `days` after the run date (deterministic per day)."""
        return datetime.combine(self.today + timedelta(days=days), time(hour, minute), PARIS)

    def add(
        self,
        mission: str,
        event_type: str,
        key: str,
        data: dict[str, Any],
        until: Check | None = None,
        *,
        expect_refusal: bool = False,
        note: str = "",
        invoice_of: str | None = None,
    ) -> None:
        # occurred_at: the run date's midnight plus one second per step, so a re-run on the
        # same day sends the very same bytes (a duplicate, not a conflict).
        occurred = self.at(0) + timedelta(seconds=len(self.steps))
        event = {
            "event_id": f"evt-demo-{self.stamp}-{key}",
            "type": event_type,
            "occurred_at": occurred.isoformat(),
            "data": data,
        }
        self.steps.append(Step(event, mission, until, expect_refusal, note, invoice_of))

    def submit(
        self,
        number: int,
        rfp: int,
        provider: DemoProvider,
        tjm: str,
        start: date,
        end: date | None = None,
    ) -> str:
        pid = self.pid(number)
        self.missions[pid] = provider
        end = end or start + timedelta(days=180)
        self.add(
            pid,
            "proposal.submitted",
            f"{pid}-submitted",
            proposal_data(pid, self.rfp(rfp), provider, tjm, start, end),
            recorded,
        )
        return pid

    def proposal(self, pid: str, event_type: str, until: Check | None = None, **extra: Any) -> None:
        suffix = event_type.replace("qualification_meeting", "qm").replace("proposal.", "")
        self.add(pid, event_type, f"{pid}-{suffix}", {"proposal_id": pid, **extra}, until)

    def documents(
        self,
        pid: str,
        provider: DemoProvider,
        kinds: list[tuple[str, int]],
        *,
        review: bool = True,
        reject: dict[str, str] | None = None,
    ) -> list[str]:
        """Upload one document per kind (issued `days` before the run date), then review
        each: accepted, or rejected with the comment in `reject` (by kind)."""
        reject = reject or {}
        ids = []
        for kind, days_ago in kinds:
            doc_id = f"DOC-{self.stamp}-{provider.siren}-{kind}-1"
            ids.append(doc_id)
            self.add(
                pid,
                "document.uploaded",
                f"{doc_id}-uploaded",
                {
                    "document_id": doc_id,
                    "provider_siren": provider.siren,
                    "kind": kind,
                    "issued_on": (self.today - timedelta(days=days_ago)).isoformat(),
                    "file_ref": f"s3://demo-documents/{provider.siren}/{kind}-{self.stamp}.pdf",
                },
            )
        if review:
            for (kind, _), doc_id in zip(kinds, ids, strict=True):
                self.review(pid, doc_id, reject.get(kind))
        return ids

    def review(self, pid: str, doc_id: str, rejected_because: str | None = None) -> None:
        data: dict[str, Any] = {"document_id": doc_id, "accepted": rejected_because is None}
        if rejected_because is not None:
            data["comment"] = rejected_because
        status = "accepted" if rejected_because is None else "rejected"
        # Once the mission is past legal verification the document may have expired (a later
        # run): the review happened, that is what counts.
        self.add(
            pid,
            "document.reviewed",
            f"{doc_id}-reviewed",
            data,
            lambda v: (
                document_is(doc_id, status, "expired")(v) or reached(MissionStage.TO_START)(v)
            ),
        )

    def sign(
        self,
        pid: str,
        number: int,
        offer: str,
        *,
        opens: str | None = None,
        invoicing: str = "platform",
    ) -> None:
        """Purchase order, then the contract with `offer` (and `invoicing`, sent when the
        provider imports its own invoices): with a compliant provider the mission is to start,
        and in progress at once when its start date has passed; then waits until the CRA cycle
        of `opens` (YYYY-MM) is open."""
        self.proposal(
            pid,
            "purchase_order.confirmed",
            lambda v: v.state.legal.purchase_order is not None,
            po_number=f"PO-{self.stamp}-{number:03d}",
        )
        until = reached(MissionStage.TO_START)
        if opens is not None:
            until = lambda v: (  # noqa: E731
                v.state.stage is MissionStage.IN_PROGRESS and opens in v.state.cra_months
            )
        self.proposal(
            pid,
            "contract.signed",
            until,
            signed_on=self.today.isoformat(),
            payment_offer=offer,
            special_conditions_ref=f"CP-{self.stamp}-{number:03d}",
            **({} if invoicing == "platform" else {"invoicing": invoicing}),
        )

    def client_pays(self, pid: str, month: str, amount: Decimal, note: str) -> None:
        """The client pays `amount` of the month's invoice today (`client_payment.received`)."""
        self.add(
            pid,
            "client_payment.received",
            f"{pid}-payment-{month}-{amount}",
            {
                "invoice_number": f"<invoice of {month}>",  # replaced when the step runs
                "amount": str(amount),
                "paid_on": self.today.isoformat(),
            },
            note=note,
            invoice_of=month,
        )

    def cra(self, pid: str, month: str, days: str, expenses: list[dict[str, Any]]) -> None:
        """The month's CRA submitted, then validated by the client's approver: BPF, invoice and
        the payout workflow `payout-<mission>-<month>` on the offer's date."""
        self.add(
            pid,
            "cra.submitted",
            f"{pid}-cra-{month}-submitted",
            {"mission_id": pid, "month": month, "days": days, "expenses": expenses},
        )
        self.add(
            pid,
            "cra.validated",
            f"{pid}-cra-{month}-validated",
            {"mission_id": pid, "month": month, "approver_id": CLIENT["approvers"][0]["id"]},
            lambda v: month in v.state.validated_months,
        )


def add_first_cra(s: Scenario, m1: str, month: str) -> None:
    """Mission 1's first month's CRA, filed on the day it opens and validated."""
    s.add(
        m1,
        "cra.submitted",
        f"{m1}-cra-{month}-submitted",
        {
            "mission_id": m1,
            "month": month,
            "days": "1",
            "expenses": [
                {
                    "label": "Train Paris-Lyon (kick-off)",
                    "amount": "120.40",
                    "vat_rate": "10",
                    "receipt_ref": f"s3://demo-receipts/{m1}-{month}-1.pdf",
                }
            ],
        },
    )
    s.add(
        m1,
        "cra.validated",
        f"{m1}-cra-{month}-validated",
        {"mission_id": m1, "month": month, "approver_id": CLIENT["approvers"][0]["id"]},
        lambda v: month in v.state.validated_months,
    )


def build_scenario(today: date) -> Scenario:
    s = Scenario(today)
    next_month = (today.replace(day=28) + timedelta(days=4)).replace(day=1)

    m1 = s.submit(1, 1, DURAND, "650.00", today)  # starts today: in progress at once
    m2 = s.submit(2, 2, LEA, "480.00", next_month)
    m3 = s.submit(3, 3, NORDIC, "720.00", next_month)
    m4 = s.submit(4, 3, DURAND, "640.00", next_month)
    m5 = s.submit(5, 3, LEA, "500.00", next_month)
    m6 = s.submit(6, 1, LEA, "520.00", today)
    m7 = s.submit(7, 2, NORDIC, "700.00", next_month)
    # The platform delivers an event twice: the gateway answers 200 duplicate.
    s.steps.append(Step(s.steps[0].event, m1, recorded, note="sent again: one effect only"))

    # 1. Durand Conseil: the whole stage, to "in progress" today.
    s.proposal(m1, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(m1, "proposal.rated", status_at_least(ProposalStatus.INTERESTING), interesting=True)
    s.proposal(
        m1,
        "qualification_meeting.scheduled",
        reached(MissionStage.QUALIFICATION),
        at=s.at(3, 10).isoformat(),
    )
    s.proposal(m1, "qualification_meeting.held", timeline_has("qualification_meeting.held"))
    s.proposal(m1, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.add(
        m1,
        "proposal.updated",
        f"{m1}-tjm-after-decision",
        {"proposal_id": m1, "tjm": "700.00"},
        expect_refusal=True,
        note="a TJM change after the client's decision is refused",
    )
    s.documents(
        m1,
        DURAND,
        [
            ("urssaf_vigilance", 12),
            ("kbis", 20),
            ("sworn_statement", 0),
            ("foreign_workers_list", 0),
        ],
        reject={
            "urssaf_vigilance": "Attestation illisible : la date de délivrance et le code de "
            "sécurité n'apparaissent pas. Merci de déposer le PDF original de l'URSSAF."
        },
    )
    replacement = f"DOC-{s.stamp}-{DURAND.siren}-urssaf_vigilance-2"
    s.add(
        m1,
        "document.uploaded",
        f"{replacement}-uploaded",
        {
            "document_id": replacement,
            "provider_siren": DURAND.siren,
            "kind": "urssaf_vigilance",
            "issued_on": (today - timedelta(days=2)).isoformat(),
            "file_ref": f"s3://demo-documents/{DURAND.siren}/urssaf_vigilance-{s.stamp}-v2.pdf",
        },
    )
    s.review(m1, replacement)
    s.proposal(
        m1,
        "purchase_order.confirmed",
        lambda v: v.state.legal.purchase_order is not None,
        po_number=f"PO-{s.stamp}-001",
    )
    month = today.strftime("%Y-%m")
    s.proposal(
        m1,
        "contract.signed",
        lambda v: v.state.stage is MissionStage.IN_PROGRESS and month in v.state.cra_months,
        signed_on=today.isoformat(),
        payment_offer="flash",
        special_conditions_ref=f"CP-{s.stamp}-001",
    )
    # Its first month's CRA (pro rata: it started today). Days not yet worked are not billed:
    # it opens on the month's last business day, so before that day filing it is a 409 that
    # names the day; on it, it is filed and validated by the client's approver: BPF, invoice
    # and a Flash payout 3 business days later (`payout-<mission>-<month>`). Mission 12 shows
    # a Flash payout whatever the day.
    opens = submission_opens_on(month, today, today + timedelta(days=180))
    if today < opens:
        s.add(
            m1,
            "cra.submitted",
            f"{m1}-cra-{month}-too-early",
            {"mission_id": m1, "month": month, "days": "1"},
            expect_refusal=True,
            note=f"a CRA filed before its month's last business day ({opens}) is refused",
        )
    else:
        add_first_cra(s, m1, month)

    # 2. Léa Petit EI (auto-entrepreneur: a Sirene notice, not a Kbis): to start next month.
    s.proposal(m2, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(m2, "proposal.rated", status_at_least(ProposalStatus.INTERESTING), interesting=True)
    s.proposal(m2, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.documents(
        m2,
        LEA,
        [
            ("urssaf_vigilance", 30),
            ("sirene_situation", 5),
            ("sworn_statement", 1),
            ("foreign_workers_list", 1),
        ],
    )
    s.proposal(
        m2,
        "purchase_order.confirmed",
        lambda v: v.state.legal.purchase_order is not None,
        po_number=f"PO-{s.stamp}-002",
    )
    s.proposal(
        m2,
        "contract.signed",
        reached(MissionStage.TO_START),
        signed_on=today.isoformat(),
        payment_offer="express",
        special_conditions_ref=f"CP-{s.stamp}-002",
    )

    # 3. Nordic Data Oy (Finland): fixed-date offers are refused, back-to-back it is; one
    # document still under review and no purchase order: verification goes on.
    s.proposal(m3, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(m3, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.add(
        m3,
        "contract.signed",
        f"{m3}-contract-flash",
        {
            "proposal_id": m3,
            "signed_on": today.isoformat(),
            "payment_offer": "flash",
            "special_conditions_ref": f"CP-{s.stamp}-003",
        },
        expect_refusal=True,
        note="Flash needs a provider in France",
    )
    s.proposal(
        m3,
        "contract.signed",
        lambda v: v.state.legal.contract is not None,
        signed_on=today.isoformat(),
        payment_offer="back_to_back",
        special_conditions_ref=f"CP-{s.stamp}-003",
    )
    s.documents(
        m3,
        NORDIC,
        [("urssaf_vigilance", 40), ("kbis", 10), ("sworn_statement", 3)],
    )
    s.documents(m3, NORDIC, [("foreign_workers_list", 0)], review=False)
    s.steps[-1] = Step(
        s.steps[-1].event,
        m3,
        lambda v: (
            provider_misses_only("liste des salariés étrangers (en cours de vérification)")(v)
            # accepted since, for mission 11 (steps of different missions interleave)
            or provider_misses_only()(v)
            or reached(MissionStage.TO_START)(v)
        ),
    )

    # 4. Durand Conseil again: a QM in three days (the reminder timer waits for the eve).
    s.proposal(m4, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(m4, "proposal.rated", status_at_least(ProposalStatus.INTERESTING), interesting=True)
    s.proposal(
        m4,
        "qualification_meeting.scheduled",
        reached(MissionStage.QUALIFICATION),
        at=s.at(3, 14, 30).isoformat(),
    )

    # 5. Léa Petit EI: read, nothing decided yet.
    s.proposal(m5, "proposal.read", status_at_least(ProposalStatus.READ))

    # 6. RFP 1 closes: mission 1 (retained) is told, mission 6 (undecided) is lost.
    s.add(m6, "rfp.closed", f"{s.rfp(1)}-closed", {"rfp_id": s.rfp(1)}, reached(MissionStage.LOST))

    # 7. Nordic Data Oy withdraws its second proposal.
    s.proposal(
        m7,
        "proposal.cancelled",
        reached(MissionStage.CANCELLED),
        reason="Le consultant proposé n'est plus disponible aux dates demandées.",
    )

    # 8-12: one mission per payment offer, billed (a scenario of its own, below).
    billed = add_billed_missions(s, first_number=8)
    # 8 again: renewed for six more months at a new TJM, paid Express from then on.
    add_renewal(s, billed[0], months=6, tjm="680.00", offer="express")
    # 13: the provider issues its own invoices (manual import).
    add_imported_invoice_mission(s, number=13)
    # 14: a negative balance carried over to the next month's invoice.
    add_carried_over_mission(s, number=14)
    # 15: renewed from the 16th at a new TJM and offer: last month billed in two periods.
    add_mid_month_renewal(s, number=15)
    return s


def add_carried_over_mission(s: Scenario, number: int) -> str:
    """Mission `number` (Durand Conseil, Basic, 600 €), started on the first day of the month
    three months ago, its three months validated today. The first is billed as worked; the
    second declares 2 days (1,200 €) and a −3,000 € correction of the first: no invoice is
    negative, so its invoice is 0 € (its payout wires nothing) and the 1,800 € it cannot
    absorb are carried to the third month's invoice, which opens with "Report du solde
    négatif de <mois> (facture F-…)". The third month's CRA is submitted before the second's
    (a cycle learns that the first month is validated a moment after the mission does)."""
    first_day = (s.today.replace(day=1) - timedelta(days=1)).replace(day=1)
    months: list[date] = []
    for _ in range(3):
        months.insert(0, first_day)
        first_day = (first_day - timedelta(days=1)).replace(day=1)
    first, second, third = (m.strftime("%Y-%m") for m in months)

    def worked(start: date) -> int:
        end = (start + timedelta(days=32)).replace(day=1)
        return sum(is_business_day(start + timedelta(days=n)) for n in range((end - start).days))

    pid = s.submit(number, number - 4, DURAND, "600.00", months[0])
    s.proposal(pid, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(pid, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.sign(pid, number, "basic", opens=third)
    s.cra(pid, first, str(worked(months[0])), [])
    s.add(
        pid,
        "cra.submitted",
        f"{pid}-cra-{third}-submitted",
        {"mission_id": pid, "month": third, "days": str(worked(months[2]))},
    )
    correction = {
        "label": "Jours facturés en trop",
        "amount": "-3000.00",
        "corrects_month": first,
    }
    s.add(
        pid,
        "cra.submitted",
        f"{pid}-cra-{second}-submitted",
        {"mission_id": pid, "month": second, "days": "2", "corrections": [correction]},
    )
    approver = CLIENT["approvers"][0]["id"]
    s.add(
        pid,
        "cra.validated",
        f"{pid}-cra-{second}-validated",
        {"mission_id": pid, "month": second, "approver_id": approver},
        lambda v: second in v.state.validated_months,
        note="2 days and a -3,000 € correction: invoice of 0 €, 1,800 € carried over",
    )
    s.add(
        pid,
        "cra.validated",
        f"{pid}-cra-{third}-validated",
        {"mission_id": pid, "month": third, "approver_id": approver},
        lambda v: third in v.state.validated_months,
        note="its invoice opens with the 1,800 € carried from the month before",
    )
    return pid


def add_mid_month_renewal(s: Scenario, number: int) -> str:
    """Mission `number` (Durand Conseil, Express at 600 €) ran from the 1st to the 15th of
    last month; renewed to the month's end at 700 € under Flash, from the 16th: last month is
    billed in two periods (issue 11 point 5), `YYYY-MM` (1st-15th, 600 €, Express) and
    `YYYY-MM-p2` (16th-end, 700 €, Flash), each with its own CRA, BPF, invoice and payout."""
    last_month_end = s.today.replace(day=1) - timedelta(days=1)
    started = last_month_end.replace(day=1)
    old_end = started + timedelta(days=14)
    month = started.strftime("%Y-%m")
    second = f"{month}-p2"

    def worked(first: date, last: date) -> str:
        return str(
            sum(is_business_day(first + timedelta(days=n)) for n in range((last - first).days + 1))
        )

    pid = s.submit(number, number - 4, DURAND, "600.00", started, old_end)
    s.proposal(pid, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(pid, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.sign(pid, number, "express", opens=month)
    approver = CLIENT["approvers"][0]["id"]
    s.add(
        pid,
        "renewal.requested",
        f"{pid}-renewal-requested",
        {"mission_id": pid, "new_end_date": last_month_end.isoformat(), "new_tjm": "700.00"},
        reached(MissionStage.RENEWAL_PENDING),
    )
    s.add(
        pid,
        "renewal.accepted",
        f"{pid}-renewal-accepted",
        {"mission_id": pid, "payment_offer": "flash"},
        timeline_has("renewal.accepted"),
    )
    s.add(
        pid,
        "renewal.validated",
        f"{pid}-renewal-validated",
        {"mission_id": pid, "approver_id": approver},
        lambda v: second in v.state.cra_months,
    )
    s.cra(pid, month, worked(started, old_end), [])
    s.cra(pid, second, worked(old_end + timedelta(days=1), last_month_end), [])
    return pid


def add_imported_invoice_mission(s: Scenario, number: int) -> str:
    """Mission `number` (Durand Conseil, Express), signed with `invoicing: provider`: the
    provider imports its own invoice instead of the platform's self-billing. Started on the
    first day of last month, last month's CRA is validated today: no invoice is generated,
    the payout waits for `invoice.imported`. An invoice dated after its import day is refused
    (409); the provider's invoice, issued on last month's last business day, is then imported
    with the CRA's amounts: it is dated of that issue date (the 60-day legal cap runs from
    it) and the payout is scheduled 30 days after the validation."""
    last_month_end = s.today.replace(day=1) - timedelta(days=1)
    started = last_month_end.replace(day=1)
    month = started.strftime("%Y-%m")
    worked = sum(is_business_day(started + timedelta(days=n)) for n in range(last_month_end.day))
    tjm = "610.00"
    pid = s.submit(number, number - 4, DURAND, tjm, started)
    s.proposal(pid, "proposal.read", status_at_least(ProposalStatus.READ))
    s.proposal(pid, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.sign(pid, number, "express", opens=month, invoicing="provider")
    s.cra(pid, month, str(worked), [])
    cra = CraSubmitted(mission_id=pid, month=month, days=Decimal(worked))
    amounts = invoice_amounts_for_cra(cra, Decimal(tjm), regime=DURAND.vat_regime)
    invoice = {
        "mission_id": pid,
        "month": month,
        "number": f"DC-{s.stamp}-{number:03d}",
        "issued_on": previous_business_day_on_or_before(last_month_end).isoformat(),
        "amount_excl_vat": str(amounts.total_excl_vat),
        "vat_amount": str(amounts.vat),
        "file_ref": f"s3://demo-invoices/{DURAND.siren}/DC-{s.stamp}-{number:03d}.pdf",
    }
    s.add(
        pid,
        "invoice.imported",
        f"{pid}-invoice-{month}-dated-tomorrow",
        {**invoice, "issued_on": (s.today + timedelta(days=1)).isoformat()},
        expect_refusal=True,
        note="an invoice dated after its import is refused",
    )
    s.add(
        pid,
        "invoice.imported",
        f"{pid}-invoice-{month}-imported",
        invoice,
        note=f"the provider's invoice, dated of its own issue date ({invoice['issued_on']})",
    )
    return pid


def add_renewal(s: Scenario, pid: str, *, months: int, tjm: str, offer: str) -> None:
    """The client renews mission `pid` for `months` more months at `tjm`, the provider accepts
    and switches to `offer`, the approver validates: with the provider still compliant the
    contract version 2 takes effect at once (the mission workflow continues as new); the
    months already billed keep their TJM and offer."""
    end = next(
        date.fromisoformat(str(step.event["data"]["end_date"]))
        for step in s.steps
        if step.event["type"] == "proposal.submitted" and step.mission == pid
    )
    new_end = end + timedelta(days=30 * months)
    approver = CLIENT["approvers"][0]["id"]
    s.add(
        pid,
        "renewal.requested",
        f"{pid}-renewal-requested",
        {"mission_id": pid, "new_end_date": new_end.isoformat(), "new_tjm": tjm},
        reached(MissionStage.RENEWAL_PENDING),
    )
    s.add(
        pid,
        "renewal.accepted",
        f"{pid}-renewal-accepted",
        {"mission_id": pid, "payment_offer": offer},
        timeline_has("renewal.accepted"),
    )
    s.add(
        pid,
        "renewal.validated",
        f"{pid}-renewal-validated",
        {"mission_id": pid, "approver_id": approver},
        lambda v: bool(v.state.renewals) and v.state.stage is MissionStage.IN_PROGRESS,
    )


def add_billed_missions(s: Scenario, first_number: int) -> list[str]:
    """Missions 8-12, one per payment offer, started on the first day of last month (mission
    1's Flash month is billable only from its last business day): last month's CRA is
    validated today, so each has its BPF, its invoice and its payout workflow
    `payout-<mission>-<YYYY-MM>`:

    - Basic (Durand Conseil): paid 60 days after the validation, `NextPayoutDate` set;
    - Express (Léa Petit EI, VAT franchise: no VAT on the invoice): 30 days after;
    - back-to-back (Lisboa Dev Lda, Portugal): waits for the client's payment of the invoice;
      the client pays 40 % of it (nothing released, still due shown by `explain`), then the
      rest, which releases the payout on the first business day on or after today;
    - immediate payment (Nordic Data Oy, Finland; its foreign workers list, left under review
      by mission 3, accepted now): paid on the first business day on or after today;
    - Flash (Durand Conseil): paid 3 business days after today.

    A scenario is a function of the `Scenario` like this one, built from its steps (`submit`,
    `proposal`, `documents`, `sign`, `cra`) and called from `build_scenario`; it numbers its
    missions from `first_number` and answers their ids. Durand Conseil and Léa Petit EI are
    compliant by then (missions 1 and 2 provided their documents)."""
    last_month_end = s.today.replace(day=1) - timedelta(days=1)
    started = last_month_end.replace(day=1)
    month = started.strftime("%Y-%m")
    worked = sum(is_business_day(started + timedelta(days=n)) for n in range(last_month_end.day))
    plans = [
        (DURAND, "basic", "630.00"),
        (LEA, "express", "450.00"),
        (LISBOA, "back_to_back", "700.00"),
        (NORDIC, "immediate", "680.00"),
        (DURAND, "flash", "660.00"),
    ]
    # Step by step across the missions (each waits only for its own previous step).
    missions = [
        s.submit(first_number + n, first_number + n - 4, provider, tjm, started)
        for n, (provider, _, tjm) in enumerate(plans)
    ]
    for pid in missions:
        s.proposal(pid, "proposal.read", status_at_least(ProposalStatus.READ))
    for pid in missions:
        s.proposal(pid, "proposal.retained", reached(MissionStage.LEGAL_VERIFICATION))
    s.documents(  # Lisboa Dev Lda's first missions: its documents
        missions[2],
        LISBOA,
        [
            ("urssaf_vigilance", 20),
            ("kbis", 15),
            ("sworn_statement", 2),
            ("foreign_workers_list", 2),
        ],
    )
    # Nordic Data Oy's foreign workers list, under review since mission 3, is accepted: the
    # provider is compliant for mission 11 (mission 3 still lacks its purchase order).
    s.review(missions[3], f"DOC-{s.stamp}-{NORDIC.siren}-foreign_workers_list-1")
    for n, (pid, (_, offer, _)) in enumerate(zip(missions, plans, strict=True)):
        s.sign(pid, first_number + n, offer, opens=month)
    for pid, (provider, offer, _) in zip(missions, plans, strict=True):
        expenses = []
        if offer == "basic":
            expenses.append(
                {
                    "label": "Hôtel Lyon (2 nuits, atelier client)",
                    "amount": "236.00",
                    "vat_rate": "10",
                    "receipt_ref": f"s3://demo-receipts/{pid}-{month}-1.pdf",
                }
            )
        days = worked - 1 if provider is LEA else worked  # a day off
        s.cra(pid, month, str(days), expenses)
    # Back-to-back (Lisboa Dev Lda): the client pays 40 % of the invoice, which releases
    # nothing (explain says what is still due), then the rest, which releases the payout.
    back_to_back, tjm = missions[2], Decimal(plans[2][2])
    cra = CraSubmitted(mission_id=back_to_back, month=month, days=Decimal(worked))
    total = invoice_amounts_for_cra(cra, tjm, regime=LISBOA.vat_regime).total_incl_vat
    first = (total * Decimal("0.4")).quantize(Decimal("0.01"))
    s.client_pays(back_to_back, month, first, "partial: the payout still waits")
    s.client_pays(back_to_back, month, total - first, "the rest: the payout is released")
    return missions


# --- Running it -----------------------------------------------------------------------------


class DemoFailed(Exception):
    pass


async def _view(gateway: GatewayClient, mission_id: str) -> MissionView | None:
    response = await gateway.get_mission(mission_id)
    if response.status_code != 200:
        return None
    return MissionView.model_validate(response.body)


async def _wait(gateway: GatewayClient, mission_id: str, until: Check, within: float) -> bool:
    deadline = monotonic() + within
    while True:
        view = await _view(gateway, mission_id)
        if view is not None and until(view):
            return True
        if monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_INTERVAL)


def _applied_before(body: dict[str, Any]) -> bool:
    """A duplicate of an event whose first delivery was accepted: its effect happened in an
    earlier run, and the mission may be well past it (renewed since, say), so there is
    nothing to wait for."""
    return body.get("status") == "duplicate" and body.get("first_delivery") == "accepted"


def _target(body: dict[str, Any]) -> str:
    if body.get("workflow_ids"):
        return ", ".join(body["workflow_ids"])
    return str(body.get("workflow_id") or body.get("detail", ""))


class _Runner:
    """Posts the steps in order; before a mission's next event, waits until the mission
    shows its previous one (missions advance side by side while the worker catches up)."""

    def __init__(self, gateway: GatewayClient, echo: Callable[[str], None], within: float):
        self.gateway = gateway
        self.echo = echo
        self.within = within
        self.failures = 0
        self.pending: dict[str, Check] = {}  # mission → effect not yet seen
        self.broken: set[str] = set()  # missions whose path broke: later steps are not sent

    def fail(self, mission: str) -> None:
        self.failures += 1
        self.broken.add(mission)

    async def settle(self, mission: str) -> bool:
        until = self.pending.pop(mission, None)
        if until is None or await _wait(self.gateway, mission, until, self.within):
            return True
        self.echo(f"    mission {mission} did not show the expected effect within {self.within}s")
        self.fail(mission)
        return False

    async def invoice_number(self, mission_id: str, month: str) -> str | None:
        response = await self.gateway.get_documents(mission_id)
        for document in response.body.get("documents", []) if response.ok else []:
            if document["kind"] == "invoice" and document["month"] == month:
                return str(document["number"])
        return None

    async def run(self, step: Step) -> None:
        if step.mission in self.broken or not await self.settle(step.mission):
            return
        event = step.event
        if step.invoice_of is not None:
            number = await self.invoice_number(step.mission, step.invoice_of)
            if number is None:
                self.echo(f"no invoice issued for {step.mission} {step.invoice_of}")
                self.fail(step.mission)
                return
            event = {**event, "data": {**event["data"], "invoice_number": number}}
        response: GatewayResponse = await self.gateway.send(event)
        status, body = response.status_code, response.body
        label = str(body.get("status", "?"))
        ok, outcome = response.ok, f"  ({step.note})" if step.note else ""
        if step.expect_refusal:
            ok = status == 409
            outcome = f"  (expected: {step.note})" if ok else "  (should have been refused)"
        elif status == 409 and step.until is not None:
            # A re-run after an interrupted one: the mission may already be past this step.
            view = await _view(self.gateway, step.mission)
            if view is not None and step.until(view):
                ok, label, outcome = True, "already", "  (the mission is already past it)"
        self.echo(f"{status} {label:<9} {event['type']:<32} {_target(body)}{outcome}")
        if not ok:
            self.fail(step.mission)
        elif step.until is not None and not step.expect_refusal and not _applied_before(body):
            self.pending[step.mission] = step.until


async def run_demo(
    base_url: str,
    secret: str,
    today: date,
    echo: Callable[[str], None] = print,
    *,
    within: float = WAIT_TIMEOUT,
    read_token: str | None = None,
) -> tuple[list[MissionView], int]:
    """Post the scenario's events; answer the missions' final views and the number of steps
    that failed (an unexpected answer, or an effect not seen within `within` seconds). The
    views are read with `read_token` (a token of CONTRACTING_READ_TOKENS)."""
    scenario = build_scenario(today)
    async with GatewayClient(base_url, secret, read_token=read_token) as gateway:
        runner = _Runner(gateway, echo, within)
        for step in scenario.steps:
            await runner.run(step)
        for mission in list(runner.pending):
            await runner.settle(mission)
        views = [view for pid in scenario.missions if (view := await _view(gateway, pid))]
    return views, runner.failures


def summary(views: list[MissionView], providers: dict[str, DemoProvider]) -> list[str]:
    """One line per mission: id, provider, stage, proposal status, TJM, start, what is next."""
    header = (
        f"{'mission':<18} {'provider':<16} {'stage':<19} {'proposal':<22} "
        f"{'TJM':>7}  {'start':<10}  note"
    )
    lines = [header, "-" * len(header)]
    for view in views:
        s = view.state
        provider = providers.get(s.mission_id)
        note = _note(view)
        lines.append(
            f"{s.mission_id:<18} {(provider.name if provider else s.provider_siren):<16} "
            f"{s.stage.value:<19} {s.proposal_status.value:<22} {s.tjm!s:>7}  "
            f"{s.start_date.isoformat():<10}  {note}"
        )
    return lines


def _note(view: MissionView) -> str:
    s = view.state
    if s.stage is MissionStage.IN_PROGRESS:
        offer = s.legal.contract.payment_offer.value if s.legal.contract else "?"
        validated = (
            f", CRA validated: {', '.join(s.validated_months)}" if s.validated_months else ""
        )
        renewed = ""
        if s.renewals:
            terms = s.renewals[-1]
            renewed = (
                f"; renewed (v{terms.version}) {terms.start_date} → {terms.end_date}: "
                f"TJM {terms.tjm}, offer {terms.payment_offer.value}"
            )
        return f"started {s.started_on}, offer {offer}{validated}{renewed}"
    if s.stage is MissionStage.COMPLETED:
        return f"ended {s.ended_on}, CRA validated: {', '.join(s.validated_months)}"
    if s.stage is MissionStage.TO_START:
        return f"starts {s.start_date} (timer)"
    if s.stage is MissionStage.LEGAL_VERIFICATION:
        provider = "; ".join(view.missing.get("provider", [])) or "complete"
        client = "; ".join(view.missing.get("client", [])) or "complete"
        return f"missing — provider: {provider} | client: {client}"
    if s.stage is MissionStage.QUALIFICATION and s.qualification_meeting_at:
        return f"QM {s.qualification_meeting_at.astimezone(PARIS):%Y-%m-%d %H:%M}"
    if s.stage is MissionStage.CANCELLED:
        return f"reason: {s.cancel_reason}"
    if s.stage is MissionStage.LOST:
        return next((e.detail for e in reversed(s.timeline) if e.detail), "")
    return ""


async def payout_lines(
    base_url: str, views: list[MissionView], today: date, read_token: str | None
) -> list[str]:
    """One line per payout workflow of the missions, from `GET /missions/{id}/explain` over
    each mission's months so far (a range: the demo's token is an ops token)."""
    header = f"{'payout workflow':<37} {'offer':<13} {'status':<24} date"
    lines = [header, "-" * len(header)]
    headers = {"Authorization": f"Bearer {read_token}"} if read_token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, headers=headers) as http:
        for view in views:
            mission_id = view.state.mission_id
            first = max(view.state.start_date, today - timedelta(days=330)).strftime("%Y-%m")
            last = max(first, today.strftime("%Y-%m"))
            response = await http.get(
                f"/missions/{mission_id}/explain", params={"from": first, "to": last}
            )
            if response.status_code != 200:
                continue
            explanation = response.json()
            offer = explanation.get("payment_offer") or ""
            for month in explanation["months"]:
                if month.get("payout_status") is None:
                    continue
                lines.append(
                    f"{'payout-' + mission_id + '-' + month['month']:<37} "
                    f"{month.get('offer') or offer:<13} "
                    f"{month['payout_status']:<24} {month.get('payout_date') or ''}"
                )
    return lines if len(lines) > 2 else []


def demo_command(
    gateway_url: Annotated[
        str | None, typer.Option(help="Gateway URL (default: CONTRACTING_GATEWAY_URL).")
    ] = None,
) -> None:
    """Walk the demo missions through contracting and billing via the gateway (signed events)."""
    settings = get_settings()
    url = gateway_url or settings.gateway_url
    today = datetime.now(PARIS).date()
    started = monotonic()
    token = client_read_token(settings)
    views, failures = asyncio.run(
        run_demo(url, settings.effective_gateway_secret(), today, typer.echo, read_token=token)
    )
    elapsed = monotonic() - started
    typer.echo("")
    scenario = build_scenario(today)
    for line in summary(views, scenario.missions):
        typer.echo(line)
    billed = (MissionStage.IN_PROGRESS, MissionStage.COMPLETED)
    in_progress = [v for v in views if v.state.stage in billed]
    payouts = asyncio.run(payout_lines(url, in_progress, today, token))
    if payouts:
        typer.echo('\nPayouts (Temporal UI: WorkflowType="PayoutWorkflow", column NextPayoutDate):')
        for line in payouts:
            typer.echo(line)
    typer.echo(f"\n{len(views)} missions in {elapsed:.1f}s. Look at them:")
    typer.echo(f"  contracting mission show {scenario.pid(1)}")
    typer.echo(
        f"  curl -H 'Authorization: Bearer <read token>' {url}/missions/{scenario.pid(3)}"
        "   (the token: CONTRACTING_READ_TOKENS, or var/read-token on the dev stack)"
    )
    typer.echo("  temporal workflow list --query 'MissionStage=\"in_progress\"'")
    typer.echo(
        "  temporal workflow list --query "
        "'WorkflowType=\"PayoutWorkflow\" AND NextPayoutDate IS NOT NULL'"
    )
    typer.echo(f"  contracting mission explain {scenario.pid(10)}")
    if failures:
        typer.echo(f"{failures} step(s) failed: see the lines above", err=True)
        raise typer.Exit(1)
