"""The domain rules run inside the Temporal workflow sandbox (no I/O, nothing restricted).

Workflows compute payout dates, CRA checks and document reminders themselves, so every
domain module must import and run under the sandbox's default restrictions. The `holidays`
package, for instance, cannot: it loads its names through gettext and `locale`.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio import workflow

from domain.cra import check_days
from domain.documents import expires_on, reminder_date
from domain.identifiers import validate_iban, validate_siren, validate_siret
from domain.invoices import Expense, compute_invoice_amounts, late_payment_mention
from domain.penalties import late_payment_penalty
from domain.quote import compute_quote
from schemas.enums import DocumentKind, PaymentOffer


@workflow.defn(sandboxed=True)
class DomainRulesWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        out = [
            compute_quote(
                offer=offer,
                tjm=Decimal("650"),
                days=Decimal("18.5"),
                validated_on=date(2026, 7, 10),
                provider_country="FR" if offer in ("basic", "express", "flash") else "DE",
            ).explanation
            for offer in PaymentOffer
        ]
        out.append(str(check_days(Decimal("9.5"), "2026-06", date(2026, 1, 1), date(2026, 6, 10))))
        out.append(str(reminder_date(expires_on(DocumentKind.KBIS, date(2026, 1, 1)))))
        out.append(validate_siren("732829320") + validate_siret("35600000000048"))
        out.append(validate_iban("FR7630006000011234567890189"))
        amounts = compute_invoice_amounts(
            tjm=Decimal("650"), days=Decimal("1"), expenses=[Expense(Decimal("10"), Decimal("5.5"))]
        )
        out.append(str(amounts.total_incl_vat))
        out.append(late_payment_mention())
        penalty = late_payment_penalty(Decimal("1000"), date(2026, 1, 1), date(2026, 2, 1))
        out.append(str(penalty.total))
        return out


def _test_server() -> str | None:
    beside_python = Path(sys.executable).parent / "temporal-test-server"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("temporal-test-server")


async def _run_in_sandbox(server: str) -> list[str]:
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    async with (
        await WorkflowEnvironment.start_time_skipping(test_server_existing_path=server) as env,
        Worker(env.client, task_queue="domain-sandbox", workflows=[DomainRulesWorkflow]),
    ):
        return await env.client.execute_workflow(
            DomainRulesWorkflow.run,
            id=f"domain-sandbox-{uuid.uuid4()}",
            task_queue="domain-sandbox",
            execution_timeout=timedelta(seconds=30),
        )


def test_domain_rules_run_inside_the_workflow_sandbox():
    server = _test_server()
    if server is None:
        pytest.skip("temporal-test-server binary not installed")
    out = asyncio.run(_run_in_sandbox(server))
    assert out[2].startswith("Offre Flash : CRA validé le vendredi 10/07/2026")
    assert "jeudi 16/07/2026" in out[2]
    assert out[5:] == [
        "9.5",
        "2026-03-01",  # Kbis issued 01/01 expires 01/04 (90 days), reminder one month before
        "73282932035600000000048",
        "FR7630006000011234567890189",
        "790.55",  # 650 + 20 % VAT + 10 + 5.5 % VAT
        late_payment_mention(),
        "48.49",  # 1000 × 10 % × 31 / 365 = 8.49 + 40
    ]
