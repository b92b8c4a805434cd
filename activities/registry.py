"""Builds every activity with its dependencies (engine, mailer) for the worker and the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from activities.billing_files import BillingFileActivities
from activities.cra import CraActivities
from activities.documents import DocumentActivities
from activities.mailer import Mailer
from activities.missions import MissionActivities
from activities.outbox import OutboxActivities
from activities.payouts import PayoutActivities
from activities.proposals import ProposalActivities
from activities.starts import StartActivities
from db.engine import create_engine, session_factory
from settings import Settings


class Activities:
    """The worker's activity instances, sharing one connection pool."""

    def __init__(
        self,
        engine: AsyncEngine,
        mailer: Mailer,
        *,
        settings: Settings | None = None,
        temporal: Client | None = None,
    ) -> None:
        """`temporal` is the client the worker polls with: `watch_provider` starts and
        signals the provider workflow through it."""
        settings = settings or mailer.settings
        self._engine = engine
        self._mailer = mailer
        self.sessions = sessions = session_factory(engine)
        """The pool's sessions (the worker's readiness probe checks the database with them)."""
        self.outbox = OutboxActivities(sessions, mailer)
        send_now = self.outbox.send_now  # a transition's e-mails, right after its commit
        self.proposals = ProposalActivities(sessions, send_now)
        self.missions = MissionActivities(
            sessions, settings.ops_email, settings.task_queue, temporal, send_now
        )
        self.starts = StartActivities(settings.task_queue, temporal)
        self.documents = DocumentActivities(sessions)
        self.cra = CraActivities(
            sessions,
            late_payment_rate=settings.late_payment_rate,
            recovery_indemnity=settings.recovery_indemnity,
            render_task_queue=settings.render_task_queue,
            send_now=send_now,
        )
        self.files = BillingFileActivities(sessions, settings.ops_email)
        self.payouts = PayoutActivities(sessions, settings.ops_email, send_now)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity: what a worker of the main task queue runs, the rendering too."""
        return [*self.main(), *self.rendering()]

    def rendering(self) -> list[Callable[..., Any]]:
        """The billing documents' rendering (CPU-bound): what the render task queue runs."""
        return [self.files.issue_billing_documents]

    def main(self) -> list[Callable[..., Any]]:
        """Every activity but the rendering."""
        return [
            self.proposals.record_proposal,
            self.missions.record_mission_transition,
            self.missions.record_failed_transition,
            self.missions.watch_provider,
            self.starts.open_cra_cycle,
            self.starts.start_payout,
            self.starts.signal_workflow,
            self.outbox.deliver_outbox,
            self.documents.record_document_upload,
            self.documents.record_document_review,
            self.documents.record_document_expiry,
            self.cra.record_cra_transition,
            self.cra.record_cra_validation,
            self.payouts.record_payout_transition,
            self.payouts.record_client_payment,
            self.payouts.record_invoice_import,
        ]

    async def close(self) -> None:
        await self._mailer.close()
        await self._engine.dispose()


def build_activities(settings: Settings, temporal: Client | None = None) -> Activities:
    """The activities of a worker running `settings.worker_activity_slots` at once: one
    pooled connection per slot (SQLAlchemy's default 10 + 10 made activities beyond 20 wait
    up to 30 s for a connection while the SDK ran 100 at once)."""
    engine = create_engine(settings.database_url, pool_size=settings.worker_activity_slots)
    return Activities(engine, Mailer(settings), settings=settings, temporal=temporal)
