"""How update validators refuse: one error type the gateway turns into a 409 with the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain.errors import DomainError
from schemas.events import Dated

NOT_APPLICABLE = "NotApplicable"


def refuse(message: str, *, type: str = NOT_APPLICABLE) -> ApplicationError:
    """A refusal of an event that does not apply (or, `type`, names what is not there);
    nothing is written, not even to history. Every workflow refuses through this."""
    return ApplicationError(message, type=type, non_retryable=True)


def check(rule: Callable[[], Any]) -> None:
    """Run a `domain/` rule in a validator: its refusal becomes the update's rejection."""
    try:
        rule()
    except DomainError as exc:
        raise refuse(str(exc)) from exc


def occurred(event: Dated) -> datetime:
    """When the fact happened: the platform's `occurred_at` (the business date), or the
    workflow's clock for an update sent without the gateway."""
    return event.occurred_at or workflow.now()
