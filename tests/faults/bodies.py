"""Generated bodies against the live gateway: every event type's envelope, built from its
pydantic model (schemas/events.PAYLOADS), then mutated by hypothesis (a field dropped,
replaced by any JSON, an unknown one added, the type or the envelope broken, or no JSON at
all), signed correctly. For each: no 5xx; and when refused (4xx), not one row written in
any table."""

from __future__ import annotations

import json
import time
import types
import typing
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import httpx
import psycopg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas.events import PAYLOADS
from starter.gateway.signing import signed_headers
from tests.support.factories import proposal_submitted
from tests.support.gateway import TEST_SECRET

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _value(annotation: Any) -> Any:
    """A plausible JSON value for a field's annotation (valid in shape, not in meaning)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _value(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin in (list, tuple, set, frozenset):
        return [_value(typing.get_args(annotation)[0])] if typing.get_args(annotation) else []
    if origin is dict:
        return {}
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, bool):
            return True
        if issubclass(annotation, int):
            return 1
        if issubclass(annotation, Decimal | float):
            return "100.00"
        if issubclass(annotation, datetime):
            return "2026-01-30T16:00:00+00:00"
        if issubclass(annotation, date):
            return "2026-01-30"
        if hasattr(annotation, "model_fields"):
            return {name: _value(f.annotation) for name, f in annotation.model_fields.items()}
    return f"X-{uuid.uuid4().hex[:8]}"


def base_event(event_type: str) -> dict[str, Any]:
    """An envelope of `event_type` whose data has every field of its model."""
    if event_type == "proposal.submitted":
        data = proposal_submitted()
    else:
        model = PAYLOADS[event_type]
        data = {name: _value(f.annotation) for name, f in model.model_fields.items()}
        for name in data:
            if name == "month":
                data[name] = "2026-01"
    return {
        "event_id": f"evt-{uuid.uuid4().hex}",
        "type": event_type,
        "occurred_at": "2026-01-30T16:00:00+00:00",
        "data": data,
    }


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    """A valid-looking envelope with one to three mutations, as JSON bytes."""
    event = base_event(draw(st.sampled_from(sorted(PAYLOADS))))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["envelope", "data"]))
        target = event if where == "envelope" else event.get("data")
        if not isinstance(target, dict) or not target:
            event[where] = draw(JSON)
            continue
        key = draw(st.sampled_from(sorted(target)))
        move = draw(st.sampled_from(["drop", "replace", "add", "type", "long"]))
        if move == "drop":
            del target[key]
        elif move == "replace":
            target[key] = draw(JSON)
        elif move == "add":
            target[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
        elif move == "type":
            event["type"] = draw(st.sampled_from(sorted(PAYLOADS)) | st.text(max_size=30))
        else:
            target[key] = draw(st.text(min_size=200, max_size=2000))
    return json.dumps(event, ensure_ascii=draw(st.booleans())).encode()


BODIES = (
    mutated_event() | JSON.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=200)
)


@dataclass
class BodiesReport:
    """What the gateway answered, and every failure (5xx, or a 4xx that wrote rows)."""

    answers: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    written_on_refusal: list[str] = field(default_factory=list)
    accepted_workflows: set[str] = field(default_factory=set)
    began: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the first body was sent (after the stack was quiet)."""


def row_counts(conn: psycopg.Connection[Any], tables: list[str]) -> tuple[int, ...]:
    """Every table's row count, in one statement."""
    query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables)
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return tuple(int(n) for n in row)


def quiet(conn: psycopg.Connection[Any], tables: list[str], within: float = 20.0) -> None:
    """Wait until no table changed for 1 s (an accepted event's workflow writes after the
    answer); bounded, then the next refusal's check would say what moved."""
    deadline = time.monotonic() + within
    last, stable_since = row_counts(conn, tables), time.monotonic()
    while time.monotonic() - stable_since < 1.0 and time.monotonic() < deadline:
        time.sleep(0.1)
        now = row_counts(conn, tables)
        if now != last:
            last, stable_since = now, time.monotonic()


def send_bodies(gateway_url: str, database_url: str, examples: int) -> BodiesReport:
    """Post `examples` generated bodies; each refused one must leave every table unchanged."""
    report = BodiesReport()
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with (
        psycopg.connect(conninfo, autocommit=True) as conn,
        httpx.Client(base_url=gateway_url, timeout=30) as http,
    ):
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]

        quiet(conn, tables)  # what earlier experiments left running writes now, not during ours

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(body=BODIES)
        def post(body: bytes) -> None:
            before = row_counts(conn, tables)
            response = http.post("/events", content=body, headers=signed_headers(body, TEST_SECRET))
            report.answers[response.status_code] += 1
            shown = body[:300].decode(errors="replace")
            if response.status_code >= 500:
                report.server_errors.append(
                    f"{response.status_code} {response.text[:200]} ← {shown}"
                )
            elif response.status_code >= 400:
                after = row_counts(conn, tables)
                if after != before:
                    changed = [t for t, b, a in zip(tables, before, after, strict=True) if a != b]
                    report.written_on_refusal.append(
                        f"{response.status_code} wrote {changed} ← {shown}"
                    )
            else:
                workflow = response.json().get("workflow_id")
                if workflow:
                    report.accepted_workflows.add(str(workflow))
                quiet(conn, tables)  # its effects land now, not during the next refusal

        report.began = datetime.now(UTC)
        post()
    return report
