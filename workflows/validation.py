"""How update validators refuse: one error type the gateway turns into a 409 with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.exceptions import ApplicationError

from domain.errors import DomainError

NOT_APPLICABLE = "NotApplicable"


def refuse(message: str) -> ApplicationError:
    """A refusal of an event that does not apply; nothing is written, not even to history."""
    return ApplicationError(message, type=NOT_APPLICABLE, non_retryable=True)


def check(rule: Callable[[], Any]) -> None:
    """Run a `domain/` rule in a validator: its refusal becomes the update's rejection."""
    try:
        rule()
    except DomainError as exc:
        raise refuse(str(exc)) from exc
