"""The mission and event a piece of work concerns, carried by a context variable so that every
log line written meanwhile says so without each call formatting them in."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from temporalio import activity

_NOTHING: Mapping[str, str] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, str]] = ContextVar("contracting_context", default=_NOTHING)

_MISSION_WORKFLOW = re.compile(
    r"^(?:mission-(?P<m>.+)|(?:cra|payout)-(?P<c>.+)-\d{4}-\d{2}(?:-p\d+)?)$"
)
"""The workflow ids of schemas/ids.py that name a mission (a provider's workflow names none)."""


def bind(**fields: str | None) -> None:
    """Add fields to the current context (those given as None are left out): visible to the
    caller too when called from a coroutine it awaits (same context), never to other tasks."""
    added = {key: value for key, value in fields.items() if value is not None}
    if added:
        _FIELDS.set({**_FIELDS.get(), **added})


@contextmanager
def scope(**fields: str | None) -> Iterator[None]:
    """A fresh context for one request: its fields are dropped on exit."""
    token = _FIELDS.set({key: value for key, value in fields.items() if value is not None})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def current() -> Mapping[str, str]:
    """The fields of the running request or activity; in an activity, its mission from the
    workflow id when nothing bound one."""
    fields = _FIELDS.get()
    if "mission_id" in fields or not activity.in_activity():
        return fields
    mission = mission_of_workflow(activity.info().workflow_id or "")
    return {**fields, "mission_id": mission} if mission else fields


def mission_of_workflow(workflow_id: str) -> str | None:
    """The mission a workflow id of schemas/ids.py belongs to, if any."""
    match = _MISSION_WORKFLOW.match(workflow_id)
    if match is None:
        return None
    return match.group("m") or match.group("c")
