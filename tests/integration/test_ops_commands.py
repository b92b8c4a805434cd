"""The ops commands on the session's PostgreSQL and SMTP sink, run in-process
(`starter.cli.run`): `missions list`, `payouts due`, `payouts blocked` with `--json`,
`mail resend` delivering a refused e-mail once, and the exit statuses (3 not found, 4
cannot reach). Rows are written straight into the ledger (tests/support/ledger_rows.py)."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from activities.mailer import Mailer
from activities.outbox import NotResendable, OutboxActivities, Resent
from db.engine import create_engine, create_sync_engine, session_factory
from db.models import EmailOutbox
from schemas.enums import InvoiceStatus, MissionStage, OutboxStatus, PaymentOffer, PayoutStatus
from settings import Settings, get_settings
from starter.cli import run
from starter.devstack.mailsink import MailSink
from tests.support import ledger_rows as rows

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ledger(
    migrated_db_url: str, smtp_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The CLI's settings point at the session's database and SMTP sink."""
    monkeypatch.setenv("CONTRACTING_DATABASE_URL", migrated_db_url)
    monkeypatch.setenv("CONTRACTING_SMTP_HOST", smtp_sink.host)
    monkeypatch.setenv("CONTRACTING_SMTP_PORT", str(smtp_sink.port))
    get_settings.cache_clear()
    engine = create_sync_engine(migrated_db_url)
    try:
        yield engine
    finally:
        engine.dispose()
        get_settings.cache_clear()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The exit status, stdout and stderr of `contracting ARGS`."""
    capsys.readouterr()
    status = run(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    status, out, err = cli(capsys, *args, "--json")
    assert status == 0, err
    return json.loads(out)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_missions_list_filters_and_pages(
    ledger: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    party = rows.parties(ledger)
    other = rows.parties(ledger, client_id=party.client_id)
    flash = [
        rows.mission(ledger, party, stage=MissionStage.IN_PROGRESS, offer=PaymentOffer.FLASH)
        for _ in range(2)
    ]
    done = rows.mission(ledger, other, stage=MissionStage.COMPLETED, offer=PaymentOffer.BASIC)

    page = cli_json(capsys, "missions", "list", "--client", party.client_id)
    assert page["total"] == 3
    # Newest first.
    assert [m["mission_id"] for m in page["missions"]] == [done, *reversed(flash)]
    shown = page["missions"][0]
    assert shown["stage"] == "completed" and shown["payment_offer"] == "basic"
    assert shown["provider_siren"] == other.provider_siren
    assert shown["client_name"] == "Acme Industries" and shown["start_date"] == "2026-01-05"

    def ids(*args: str) -> set[str]:
        found = cli_json(capsys, "missions", "list", "--client", party.client_id, *args)
        return {m["mission_id"] for m in found["missions"]}

    assert ids("--stage", "in_progress", "--offer", "flash") == set(flash)
    assert ids("--stage", "in_progress", "--stage", "completed") == {*flash, done}
    assert ids("--provider", other.provider_siren) == {done}
    assert ids("--offer", "back_to_back") == set()
    second = cli_json(
        capsys, "missions", "list", "--client", party.client_id, "--limit", "1", "--offset", "1"
    )
    assert second["total"] == 3 and len(second["missions"]) == 1
    assert second["missions"][0]["mission_id"] == flash[1]

    status, out, _ = cli(capsys, "missions", "list", "--client", party.client_id, "--limit", "2")
    assert status == 0 and done in out and "1-2 of 3 missions; next page: --offset 2" in out
    status, _, err = cli(capsys, "missions", "list", "--stage", "sleeping")
    assert status == 2 and err.startswith("error: ") and "sleeping" in err


def test_payouts_due_on_a_day(ledger: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    # A day of its own: no other test's payout falls on it.
    day = date(2090, 1, 1) + timedelta(days=random.randrange(3650))
    party = rows.parties(ledger)
    scheduled, paid, later = (
        rows.mission(ledger, party, stage=MissionStage.IN_PROGRESS, offer=PaymentOffer.BASIC)
        for _ in range(3)
    )
    invoice = rows.payout(
        ledger,
        scheduled,
        "2026-03",
        offer=PaymentOffer.BASIC,
        status=PayoutStatus.SCHEDULED,
        due_on=day,
    )
    for mission_id, payout_status, due_on in (
        (paid, PayoutStatus.PAID, day),
        (later, PayoutStatus.SCHEDULED, day + timedelta(days=1)),
    ):
        rows.payout(
            ledger,
            mission_id,
            "2026-03",
            offer=PaymentOffer.BASIC,
            status=payout_status,
            due_on=due_on,
        )

    due = cli_json(capsys, "payouts", "due", "--on", day.isoformat())
    assert due["on"] == day.isoformat() and due["count"] == 2
    assert (due["to_pay"], due["paid"]) == ("1140.00", "1140.00")
    by_mission = {p["mission_id"]: p for p in due["payouts"]}
    assert set(by_mission) == {scheduled, paid}
    first = by_mission[scheduled]
    assert first["status"] == "scheduled" and first["invoice_number"] == invoice
    assert (first["amount"], first["fee"], first["net_amount"]) == ("1200.00", "60.00", "1140.00")
    assert first["workflow_id"] == f"payout-{scheduled}-2026-03"
    assert by_mission[paid]["status"] == "paid" and by_mission[paid]["paid_at"] is not None

    status, out, _ = cli(capsys, "payouts", "due", "--on", day.isoformat())
    assert status == 0 and scheduled in out and later not in out
    assert f"2 payouts due on {day.isoformat()}: 1140.00 still to pay, 1140.00 paid" in out
    status, _, err = cli(capsys, "payouts", "due", "--on", "2026-02-30")
    assert status == 2 and "expected a date as YYYY-MM-DD, got '2026-02-30'" in err


def test_payouts_blocked_says_why(ledger: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    party = rows.parties(ledger)

    def new_mission(offer: PaymentOffer) -> str:
        return rows.mission(ledger, party, stage=MissionStage.IN_PROGRESS, offer=offer)

    b2b, imported, not_imported, flagged, overdue, fine, failed, resolved = (
        new_mission(PaymentOffer.BACK_TO_BACK) for _ in range(8)
    )
    month = "2026-04"
    rows.payout(
        ledger,
        b2b,
        month,
        offer=PaymentOffer.BACK_TO_BACK,
        status=PayoutStatus.WAITING_CLIENT_PAYMENT,
        due_on=None,
        client_paid=Decimal("500.00"),
    )
    rows.payout(
        ledger,
        imported,
        month,
        offer=PaymentOffer.BASIC,
        status=PayoutStatus.WAITING_INVOICE_IMPORT,
        due_on=None,
        invoice=InvoiceStatus.BLOCKED,
        blocked_reason="amount excl. VAT 1100.00, expected 1000.00",
    )
    rows.payout(
        ledger,
        not_imported,
        month,
        offer=PaymentOffer.BASIC,
        status=PayoutStatus.WAITING_INVOICE_IMPORT,
        due_on=None,
        invoice=None,
    )
    rows.payout(
        ledger,
        flagged,
        month,
        offer=PaymentOffer.FLASH,
        status=PayoutStatus.FLAGGED,
        due_on=date(2026, 5, 4),
        status_reason="duplicate invoice",
    )
    # Whatever day the test runs, 2001 is past and 2099 to come.
    rows.payout(
        ledger,
        overdue,
        month,
        offer=PaymentOffer.BASIC,
        status=PayoutStatus.SCHEDULED,
        due_on=date(2001, 5, 4),
    )
    rows.payout(
        ledger,
        fine,
        month,
        offer=PaymentOffer.BASIC,
        status=PayoutStatus.SCHEDULED,
        due_on=date(2099, 5, 4),
    )
    # The payout's first write refused for good: no payout row, only the failure.
    rows.failed_transition(
        ledger, failed, month, "payout.scheduled", "new row violates check constraint"
    )
    # Refused once, paid since: no longer blocked.
    rows.failed_transition(ledger, resolved, month, "payout.paid", "lock timeout")
    rows.payout(
        ledger,
        resolved,
        month,
        offer=PaymentOffer.BASIC,
        status=PayoutStatus.PAID,
        due_on=date(2026, 5, 4),
    )

    blocked = cli_json(capsys, "payouts", "blocked")
    ours = {b2b, imported, not_imported, flagged, overdue, fine, failed, resolved}
    mine = {p["mission_id"]: p for p in blocked["payouts"] if p["mission_id"] in ours}
    reasons = {mission_id: p["reason"] for mission_id, p in mine.items()}
    assert reasons == {
        b2b: "client_not_paid",
        imported: "invoice_blocked",
        not_imported: "invoice_not_imported",
        flagged: "flagged",
        overdue: "overdue",
        failed: "transition_failed",
    }
    assert (
        "paid 500.00 of invoice" in mine[b2b]["detail"]
        and "700.00 still due" in mine[b2b]["detail"]
    )
    assert "expected 1000.00" in mine[imported]["detail"]
    assert "duplicate invoice" in mine[flagged]["detail"]
    assert "due on 2001-05-04" in mine[overdue]["detail"]
    assert mine[failed]["status"] is None and mine[failed]["month"] == month
    assert mine[failed]["provider_siren"] == party.provider_siren
    assert "check constraint" in mine[failed]["detail"]
    assert blocked["count"] == len(blocked["payouts"])

    status, out, _ = cli(capsys, "payouts", "blocked")
    assert status == 0 and b2b in out and "client_not_paid" in out and fine not in out


def _outbox(engine: Engine, key: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(EmailOutbox).where(EmailOutbox.outbox_key == key)).one()


def test_resend_delivers_a_refused_email_once(
    ledger: Engine, smtp_sink: MailSink, capsys: pytest.CaptureFixture[str]
) -> None:
    key, subject = rows.outbox_email(
        ledger, status=OutboxStatus.REFUSED, last_error="550 5.1.1 no such user", attempts=1
    )

    def delivered() -> int:
        return len([m for m in smtp_sink.messages if m.subject == subject])

    resent = cli_json(capsys, "mail", "resend", key)
    assert resent["sent"] is True and resent["status"] == "sent" and resent["attempts"] == 2
    assert delivered() == 1 and _outbox(ledger, key).sent_at is not None

    status, _, err = cli(capsys, "mail", "resend", key)
    assert status == 1 and "already sent" in err and "--force" in err
    assert delivered() == 1
    status, out, _ = cli(capsys, "mail", "resend", key, "--force")
    assert status == 0 and "status sent" in out and delivered() == 2

    # Pending and never failed: the worker delivers it.
    pending, _ = rows.outbox_email(ledger, status=OutboxStatus.PENDING)
    status, _, err = cli(capsys, "mail", "resend", pending)
    assert status == 1 and "has not failed" in err

    # Refused again: still `refused`, the new answer recorded, status 1.
    again, _ = rows.outbox_email(ledger, status=OutboxStatus.REFUSED, last_error="550 old")
    smtp_sink.fail_next(1, code=550)
    refused = cli(capsys, "mail", "resend", again, "--json")
    assert refused[0] == 1
    assert json.loads(refused[1])["status"] == "refused"
    assert _outbox(ledger, again).last_error != "550 old"


def test_two_resends_at_once_send_once(
    ledger: Engine, smtp_sink: MailSink, stack_settings: Settings
) -> None:
    key, subject = rows.outbox_email(ledger, status=OutboxStatus.REFUSED, last_error="550")

    async def both() -> list[Resent | BaseException]:
        engine = create_engine(stack_settings.database_url)
        try:
            outbox = OutboxActivities(session_factory(engine), Mailer(stack_settings))
            return list(
                await asyncio.gather(outbox.resend(key), outbox.resend(key), return_exceptions=True)
            )
        finally:
            await engine.dispose()

    outcomes = asyncio.run(both())
    assert len([o for o in outcomes if isinstance(o, Resent) and o.sent]) == 1, outcomes
    assert len([o for o in outcomes if isinstance(o, NotResendable)]) == 1, outcomes
    assert len([m for m in smtp_sink.messages if m.subject == subject]) == 1


def test_a_resend_overtaken_by_another_is_refused(
    ledger: Engine, smtp_sink: MailSink, stack_settings: Settings
) -> None:
    """The other run sends the row and is done between this one's read and its claim: no
    claim is live any more, yet this one must not send it again."""
    key, subject = rows.outbox_email(ledger, status=OutboxStatus.REFUSED, last_error="550")

    class Overtaken(OutboxActivities):
        async def _claim_as_read(self, key: str, token: str, attempts: int) -> Any:
            other = OutboxActivities(self._sessions, self._mailer)
            assert (await other.resend(key)).sent
            return await super()._claim_as_read(key, token, attempts)

    async def overtaken() -> None:
        engine = create_engine(stack_settings.database_url)
        try:
            with pytest.raises(NotResendable, match="changed while this resend started"):
                await Overtaken(session_factory(engine), Mailer(stack_settings)).resend(key)
        finally:
            await engine.dispose()

    asyncio.run(overtaken())
    assert len([m for m in smtp_sink.messages if m.subject == subject]) == 1


def test_exit_statuses_for_not_found_and_cannot_reach(
    ledger: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = cli(capsys, "mail", "resend", "no.such:key")
    assert status == 3 and err == "error: no e-mail in the outbox with key 'no.such:key'\n"

    # The SMTP server does not answer: status 4, the row unchanged.
    key, _ = rows.outbox_email(ledger, status=OutboxStatus.REFUSED, last_error="550")
    monkeypatch.setenv("CONTRACTING_SMTP_PORT", str(closed_port()))
    get_settings.cache_clear()
    status, _, err = cli(capsys, "mail", "resend", key)
    assert status == 4 and "cannot reach the SMTP server" in err
    assert _outbox(ledger, key).status is OutboxStatus.REFUSED

    port = closed_port()
    monkeypatch.setenv(
        "CONTRACTING_DATABASE_URL", f"postgresql://ops:secret@127.0.0.1:{port}/contracting"
    )
    get_settings.cache_clear()
    for args in (("missions", "list"), ("payouts", "due"), ("payouts", "blocked")):
        status, out, err = cli(capsys, *args, "--json")
        assert status == 4 and out == "", args
        assert err.startswith("error: cannot reach the database at ") and f":{port}/" in err
        assert "secret" not in err and len(err.splitlines()) == 1


def test_a_database_never_migrated_says_so(
    fresh_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTRACTING_DATABASE_URL", fresh_database)
    get_settings.cache_clear()
    try:
        status, _, err = cli(capsys, "payouts", "blocked")
    finally:
        get_settings.cache_clear()
    assert status == 1 and "contracting migrate" in err and len(err.splitlines()) == 1
