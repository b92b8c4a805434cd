"""What a fault must not break, read back from PostgreSQL and the mail sink's directory, and
the table the suite prints: per (mission, month) exactly one CRA, BPF, invoice, payout and
billing e-mail; invoice numbers continuous per issuer; no mission left behind; no event
answered 2xx and then lost."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import (
    Bpf,
    Cra,
    EmailOutbox,
    Invoice,
    InvoiceNumberSequence,
    Payout,
    ProcessedEvent,
    ProcessedEventStatus,
)
from schemas.enums import CraStatus, OutboxStatus
from tests.support.db import rows
from tests.support.platform import Platform

Month = tuple[str, str]  # (mission id, "YYYY-MM")


@dataclass(frozen=True)
class Held:
    """One line of the table: an invariant of an experiment, and whether it held."""

    experiment: str
    invariant: str
    expected: str
    observed: str
    held: bool


def table(lines: Sequence[Held]) -> str:
    """The invariants as a fixed-width table (what `make faults` prints)."""
    header = ("experiment", "invariant", "expected", "observed", "held")
    cells = [header] + [
        (h.experiment, h.invariant, h.expected, h.observed, "yes" if h.held else "NO")
        for h in lines
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells
    ]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def billing_mails(mail_dir: Path, months: Sequence[Month]) -> Counter[Month]:
    """The billing e-mails ("CRA <month> validé") in the sink's directory, per (mission,
    month): their Message-ID derives from the outbox key, which names the mission."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    headers = []
    for path in mail_dir.glob("*.eml"):
        with path.open("rb") as stream:
            parsed = parser.parse(stream)
        headers.append((str(parsed["Subject"] or ""), str(parsed["Message-ID"] or "")))
    return Counter(
        {
            (mission, month): sum(
                1 for subject, mid in headers if mission in mid and f"CRA {month} validé" in subject
            )
            for mission, month in months
        }
    )


async def _per_month(engine: AsyncEngine, model: type, missions: list[str]) -> Counter[Month]:
    stmt = select(model.mission_id, model.month, func.count()).where(  # type: ignore[attr-defined]
        model.mission_id.in_(missions)  # type: ignore[attr-defined]
    )
    if model is Cra:
        stmt = stmt.where(Cra.status == CraStatus.VALIDATED)
    grouped = stmt.group_by(model.mission_id, model.month)  # type: ignore[attr-defined]
    return Counter({(m, month): n for m, month, n in await rows(engine, grouped)})


async def _numbering(engine: AsyncEngine, missions: list[str]) -> tuple[int, int]:
    """(issuers whose numbered invoices equal the numbers their counter gave out, issuers)."""
    issuers = select(Invoice.issuer_siren).where(Invoice.mission_id.in_(missions)).distinct()
    numbered = dict(
        await rows(
            engine,
            select(Invoice.issuer_siren, func.count(Invoice.number))
            .where(Invoice.issuer_siren.in_(issuers))
            .group_by(Invoice.issuer_siren),
        )
    )
    given = dict(
        await rows(
            engine,
            select(InvoiceNumberSequence.issuer_siren, func.sum(InvoiceNumberSequence.last_number))
            .where(
                InvoiceNumberSequence.issuer_siren.in_(issuers),
                InvoiceNumberSequence.series.like("invoice%"),
            )
            .group_by(InvoiceNumberSequence.issuer_siren),
        )
    )
    return sum(1 for s, n in numbered.items() if given.get(s) == n), len(numbered)


async def _effects(
    engine: AsyncEngine, mail_dir: Path, months: list[Month], refused: frozenset[str]
) -> dict[str, int]:
    """How many of `months` have exactly one of each effect (no billing e-mail received for
    a mission whose provider's address the sink refuses)."""
    missions = sorted({m for m, _ in months})
    counts = {
        "CRA": await _per_month(engine, Cra, missions),
        "BPF": await _per_month(engine, Bpf, missions),
        "invoice": await _per_month(engine, Invoice, missions),
        "payout": await _per_month(engine, Payout, missions),
        "billing e-mail": billing_mails(mail_dir, months),
    }
    return {
        name: sum(
            1
            for key in months
            if found[key] == (0 if name == "billing e-mail" and key[0] in refused else 1)
        )
        for name, found in counts.items()
    }


async def settled(
    engine: AsyncEngine,
    mail_dir: Path,
    months: list[Month],
    within: float,
    refused: frozenset[str] = frozenset(),
) -> dict[str, int]:
    """Wait (bounded) until every month has each effect once, then answer the counts."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await _effects(engine, mail_dir, months, refused)
        if all(n == len(months) for n in found.values()):
            return found
        if asyncio.get_running_loop().time() > deadline:
            return found  # the table says which did not come
        await asyncio.sleep(0.5)


async def _left_behind(gateway: httpx.AsyncClient, months: Iterable[Month]) -> list[str]:
    """Missions not in progress or missing a validated month, as `GET /missions` shows them."""
    wanted: dict[str, set[str]] = {}
    for mission, month in months:
        wanted.setdefault(mission, set()).add(month)
    behind = []
    for mission, expected in sorted(wanted.items()):
        answer = await gateway.get(f"/missions/{mission}")
        state = answer.json().get("state", {}) if answer.status_code == 200 else {}
        validated = set(state.get("validated_months", []))
        if state.get("stage") != "in_progress" or not expected <= validated:
            behind.append(f"{mission} ({answer.status_code}, {state.get('stage')})")
    return behind


async def billing_invariants(
    experiment: str,
    engine: AsyncEngine,
    mail_dir: Path,
    platform: Platform,
    months: list[Month],
    within: float = 120.0,
    refused: frozenset[str] = frozenset(),
) -> list[Held]:
    """Every invariant of a surge of validations of `months`, once settled (bounded).
    `refused`: missions whose provider's address the sink answers 550 (their billing e-mail
    is refused once, for good, and shows as such in the outbox)."""
    n = len(months)
    found = await settled(engine, mail_dir, months, within, refused)
    lines = [
        Held(experiment, f"one {name} per (mission, month)", str(n), str(got), got == n)
        for name, got in found.items()
    ]
    if refused:
        marked = await rows(
            engine,
            select(EmailOutbox.mission_id, EmailOutbox.status).where(
                EmailOutbox.mission_id.in_(sorted(refused)),
                EmailOutbox.template == "cra_validated",
            ),
        )
        expected = sum(1 for m, _ in months if m in refused)
        got = sum(1 for _, status in marked if status == OutboxStatus.REFUSED)
        lines.append(
            Held(
                experiment,
                "550: billing e-mail marked refused, not sent",
                str(expected),
                f"{got} of {len(marked)}",
                got == expected == len(marked),
            )
        )
    continuous, issuers = await _numbering(engine, sorted({m for m, _ in months}))
    lines.append(
        Held(
            experiment,
            "invoice numbers continuous per issuer",
            f"{issuers} issuers",
            f"{continuous} without gap",
            continuous == issuers and issuers > 0,
        )
    )
    behind = await _left_behind(platform.http, months)
    deadline = asyncio.get_running_loop().time() + within / 2
    while behind and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)  # a mission learns of its month's validation from the CRA's
        behind = await _left_behind(platform.http, months)
    lines.append(
        Held(
            experiment,
            "no mission left behind",
            "0",
            str(len(behind)) + (f": {', '.join(behind[:3])}" if behind else ""),
            not behind,
        )
    )
    accepted = [d for d in platform.deliveries if d.accepted]
    invoiced = await _per_month(engine, Invoice, sorted({m for m, _ in months}))
    lost = [
        d.event["event_id"]
        for d in accepted
        if d.event["type"] == "cra.validated"
        and invoiced[(d.event["data"]["mission_id"], d.event["data"]["month"])] != 1
    ]
    lines.append(Held(experiment, "no event answered 2xx then lost", "0", str(len(lost)), not lost))
    claims = dict(
        await rows(
            engine,
            select(ProcessedEvent.event_id, ProcessedEvent.status).where(
                ProcessedEvent.event_id.in_([d.event["event_id"] for d in accepted])
            ),
        )
    )
    ids = [d.event["event_id"] for d in accepted]
    stuck = [e for e in ids if claims.get(e) != ProcessedEventStatus.ACCEPTED]
    left = Counter(str(claims.get(e, "no claim")) for e in stuck)
    lines.append(
        Held(
            experiment,
            "every 2xx event's claim recorded accepted",
            f"{len(accepted)}",
            f"{len(accepted) - len(stuck)}" + (f", {dict(left)}" if stuck else ""),
            not stuck,
        )
    )
    unanswered = platform.unanswered()
    lines.append(
        Held(
            experiment,
            "every delivery answered 2xx in the end",
            str(len(platform.deliveries)),
            f"{len(platform.deliveries) - len(unanswered)} ({dict(platform.answers())})",
            not unanswered,
        )
    )
    return lines
