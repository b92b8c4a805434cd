"""Drives payout workflows as the CRA cycle and the platform do: `PayoutDriver` starts a
payout with the terms a CRA validation computes (`domain.payouts.payout_terms`, as
activities/cra.py does) and sends it the platform's events, on any worker (real activities or
the fast tier's fakes); `PayoutHarness` adds the rows a payout refers to (PostgreSQL) and the
SMTP sink, for the real activities.

Every payout is one month's (`MONTH`) of `DAYS` days at `TJM` with `EXPENSES` of expenses:
`INCL_VAT` in all, of which `VAT`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from db.models import (
    Client,
    Cra,
    CraLine,
    CraLineKind,
    Invoice,
    InvoiceKind,
    Mission,
    Payout,
    Proposal,
    Provider,
    Rfp,
)
from domain.clock import paris_date, paris_instant
from domain.fees import service_amount
from domain.invoices import Expense, compute_invoice_amounts
from domain.payouts import PAY_AT, payout_terms
from schemas.enums import (
    CraStatus,
    InvoiceStatus,
    LegalForm,
    MissionStage,
    PaymentOffer,
    ProposalStatus,
)
from schemas.events import ClientPaymentReceived
from schemas.ids import payout_workflow_id
from schemas.names import CLIENT_PAYMENT_RECEIVED, PAYOUT_WORKFLOW, STATE_QUERY
from schemas.payouts import PayoutInput, PayoutProvider, PayoutState
from starter.devstack.mailsink import MailSink, ReceivedMessage
from tests.fixtures.temporal import skip_until
from tests.support import db
from tests.support.factories import new_siren
from tests.support.waits import eventually, mails

Handle = WorkflowHandle[Any, Any]
TJM = Decimal("650.00")
DAYS = Decimal("18.5")
EXPENSES = Decimal("120.00")
VAT = Decimal("2429.00")
"""20 % of the invoice's 12,145.00 excl. VAT (18.5 days at 650.00, 120.00 of expenses)."""
INCL_VAT = Decimal("14574.00")
MONTH = "2026-11"


def gross() -> Decimal:
    """What production pays: the invoice's total incl. VAT (days and expenses excl. VAT, and
    the 20 % VAT the invoice carries)."""
    return service_amount(TJM, DAYS) + EXPENSES + VAT


class PayoutDriver:
    """Starts payouts and sends them the platform's events; no database."""

    def __init__(self, env: WorkflowEnvironment, queue: str) -> None:
        self.env = env
        self.queue = queue

    async def today(self) -> date:
        return paris_date(await self.env.get_current_time())

    async def seed(
        self, mission_id: str, provider: PayoutProvider, invoice_number: str | None, due_on: date
    ) -> None:
        """The rows a payout refers to: none without a database."""

    async def start(
        self,
        offer: PaymentOffer,
        *,
        validated_on: date | None = None,
        invoice_date: date | None = None,
        manual_import: bool = False,
        due_in_days: int = 30,
    ) -> tuple[Handle, PayoutInput]:
        """A payout of a CRA validated on `validated_on` (today by default), its invoice dated
        `invoice_date` (the validation's day by default) or awaiting its import."""
        validated_on = validated_on or await self.today()
        number = None if manual_import else f"F-{uuid.uuid4().hex[:10]}"
        mission_id = f"PAY-{uuid.uuid4().hex[:12]}"
        provider = PayoutProvider(
            siren=new_siren(), email=f"{mission_id.lower()}@provider.example", name="Durand Conseil"
        )
        await self.seed(mission_id, provider, number, validated_on + timedelta(days=due_in_days))
        amounts = compute_invoice_amounts(
            tjm=TJM, days=DAYS, expenses=[Expense(amount_excl_vat=EXPENSES, vat_rate=Decimal(20))]
        )
        assert (amounts.vat, amounts.total_incl_vat) == (VAT, INCL_VAT)
        terms = payout_terms(
            offer,
            validated_on,
            None if manual_import else invoice_date or validated_on,
            amounts,
            tjm=TJM,
            days=DAYS,
        )
        inp = PayoutInput(
            mission_id=mission_id,
            month=MONTH,
            provider=provider,
            invoice_number=number,
            terms=terms,
        )
        handle = await self.env.client.start_workflow(
            PAYOUT_WORKFLOW,
            inp,
            id=payout_workflow_id(mission_id, MONTH),
            task_queue=self.queue,
            result_type=PayoutState,
        )
        return handle, inp

    async def state(self, handle: Handle) -> PayoutState:
        result: PayoutState = await handle.query(STATE_QUERY, result_type=PayoutState)
        return result

    async def until(self, handle: Handle, check: Callable[[PayoutState], bool]) -> PayoutState:
        async def reached() -> bool:
            return check(await self.state(handle))

        try:
            await eventually(reached, within=15)
        except AssertionError:
            state = await self.state(handle)
            raise AssertionError(
                f"payout {state.mission_id} {state.month} did not reach the expected state "
                f"within 15 s: {state.status.value}, due {state.payout_date}"
            ) from None
        return await self.state(handle)

    async def send(
        self, handle: Handle, name: str, payload: Any, *, event_id: str | None = None
    ) -> PayoutState:
        """An update as the gateway sends it (the event's id, a fresh one by default); the
        payout's state."""
        result: PayoutState = await handle.execute_update(
            name, payload, id=event_id or uuid.uuid4().hex, result_type=PayoutState
        )
        return result

    async def client_pays(
        self,
        handle: Handle,
        paid_on: date,
        *,
        invoice_number: str | None,
        amount: Decimal = INCL_VAT,
        event_id: str | None = None,
    ) -> PayoutState:
        """The platform reports a client's payment of the invoice (all of it by default;
        `event_id` to send the same event again)."""
        payment = ClientPaymentReceived(
            invoice_number=invoice_number or "", amount=amount, paid_on=paid_on
        )
        return await self.send(handle, CLIENT_PAYMENT_RECEIVED, payment, event_id=event_id)

    async def reach_payment(self, payout_date: date) -> None:
        """Let the test server's clock run just past the payout's instant (PAY_AT, Paris, on
        its date): a payout due today waits for 09:00, whatever the hour the test started at."""
        await skip_until(self.env, paris_instant(payout_date, PAY_AT) + timedelta(minutes=1))


class PayoutHarness(PayoutDriver):
    """The driver, with the rows a payout refers to, the database and the SMTP sink."""

    def __init__(
        self, env: WorkflowEnvironment, queue: str, engine: AsyncEngine, sink: MailSink
    ) -> None:
        super().__init__(env, queue)
        self.engine = engine
        self.sink = sink

    async def seed(
        self, mission_id: str, provider: PayoutProvider, invoice_number: str | None, due_on: date
    ) -> None:
        """Client, provider, proposal, mission, the validated CRA with its priced lines, and
        the invoice (numbered, or awaiting its import)."""
        client_id = f"C-{mission_id}"
        start = date(2026, 11, 1)
        excl_vat = (INCL_VAT / Decimal("1.2")).quantize(Decimal("0.01"))
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(Client).values(
                    client_id=client_id, name="Acme Industries", siren="552100554"
                )
            )
            await conn.execute(
                insert(Provider).values(
                    siren=provider.siren,
                    name=provider.name,
                    email=provider.email,
                    country="FR",
                    legal_form=LegalForm.COMPANY,
                )
            )
            await conn.execute(insert(Rfp).values(rfp_id=f"RFP-{mission_id}", client_id=client_id))
            await conn.execute(
                insert(Proposal).values(
                    proposal_id=mission_id,
                    rfp_id=f"RFP-{mission_id}",
                    provider_siren=provider.siren,
                    client_id=client_id,
                    tjm=TJM,
                    start_date=start,
                    end_date=start + timedelta(days=180),
                    status=ProposalStatus.RETAINED,
                )
            )
            await conn.execute(
                insert(Mission).values(
                    mission_id=mission_id,
                    client_id=client_id,
                    provider_siren=provider.siren,
                    stage=MissionStage.IN_PROGRESS,
                    start_date=start,
                    end_date=start + timedelta(days=180),
                )
            )
            cra_id = (
                await conn.execute(
                    insert(Cra)
                    .values(
                        mission_id=mission_id, month=MONTH, days=DAYS, status=CraStatus.VALIDATED
                    )
                    .returning(Cra.id)
                )
            ).scalar_one()
            # A validated CRA has its priced lines (credit notes are rendered from them).
            await conn.execute(
                insert(CraLine).values(
                    cra_id=cra_id,
                    position=1,
                    kind=CraLineKind.DAYS,
                    label="Jours travaillés",
                    quantity=DAYS,
                    unit_price=TJM,
                    amount=service_amount(TJM, DAYS),
                )
            )
            await conn.execute(
                insert(CraLine).values(
                    cra_id=cra_id,
                    position=2,
                    kind=CraLineKind.EXPENSE,
                    label="Train",
                    amount=EXPENSES,
                    vat_rate=Decimal("20"),
                    receipt_ref="s3://receipts/train.pdf",
                )
            )
            await conn.execute(
                insert(Invoice).values(
                    issuer_siren=provider.siren,
                    number=invoice_number,
                    mission_id=mission_id,
                    month=MONTH,
                    kind=InvoiceKind.GENERATED if invoice_number else InvoiceKind.IMPORTED,
                    status=InvoiceStatus.IN_PAYMENT,
                    amount_excl_vat=excl_vat,
                    vat_amount=INCL_VAT - excl_vat,
                    amount_incl_vat=INCL_VAT,
                    due_on=due_on,
                )
            )

    async def mails(
        self, predicate: Callable[[ReceivedMessage], bool], count: int
    ) -> list[ReceivedMessage]:
        return await mails(self.sink, predicate, count)

    async def count(self, stmt: Any) -> int:
        return await db.count(self.engine, stmt)

    async def invoice_row(self, mission_id: str) -> Any:
        return await self._row(Invoice, mission_id)

    async def payout_row(self, mission_id: str) -> Any:
        return await self._row(Payout, mission_id)

    async def _row(self, model: type[Invoice] | type[Payout], mission_id: str) -> Any:
        """The mission's one row of `model`'s table."""
        query = select(model.__table__).where(model.__table__.c.mission_id == mission_id)
        [row] = await db.rows(self.engine, query)
        return row
