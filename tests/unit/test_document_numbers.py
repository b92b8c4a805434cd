"""domain.document_numbers: every number fits the 35-character document-number rule, whatever
the platform's ids (1 to 100 characters of letters, digits, `.`, `:`, `-`, `_`)."""

from __future__ import annotations

import random
import re
import string

import pytest
from pydantic import TypeAdapter

from domain.document_numbers import (
    DocumentKind,
    bpf_number,
    credit_note_number,
    document_number,
    invoice_number,
)
from schemas.billing import DocumentNumber
from schemas.common import PlatformId

RULE = re.compile(r"[A-Za-z0-9+\-_/]{1,35}")
ID_TAIL = string.ascii_letters + string.digits + ".:-_"
MONTHS = ("2026-01", "2026-11", "2031-12")


def _ids() -> list[str]:
    """Valid platform ids of every length 1..100: random ones, and the worst cases (all
    separators, all `.`/`:`)."""
    rng = random.Random(11)
    ids = []
    for length in range(1, 101):
        head = rng.choice(string.ascii_letters + string.digits)
        ids.append(head + "".join(rng.choice(ID_TAIL) for _ in range(length - 1)))
        ids.append(("M" + ".:-_" * 25)[:length])
        ids.append(("9" + "x" * 99)[:length])
    return ids


def test_every_platform_id_gives_a_valid_distinct_bpf_number() -> None:
    ids = _ids()
    check_id, check_number = TypeAdapter(PlatformId), TypeAdapter(DocumentNumber)
    numbers: set[str] = set()
    for mission_id in ids:
        check_id.validate_python(mission_id)
        for month in MONTHS:
            number = bpf_number(mission_id, month)
            assert RULE.fullmatch(number), (mission_id, number)
            assert check_number.validate_python(number) == number
            assert number.startswith("BPF-") and number.endswith(f"-{month}")
            assert bpf_number(mission_id, month) == number  # stable: retries, replays
            numbers.add(number)
    assert len(numbers) == len(set(ids)) * len(MONTHS)


def test_an_id_that_fits_keeps_the_number_it_always_had() -> None:
    assert bpf_number("P-1a2b3c4d5e", "2026-11") == "BPF-P-1a2b3c4d5e-2026-11"
    assert bpf_number("M-1", "2026-07") == "BPF-M-1-2026-07"
    assert bpf_number("A" * 23, "2026-07") == f"BPF-{'A' * 23}-2026-07"  # 35 exactly


def test_a_long_id_or_one_with_dots_and_colons_is_hashed_with_a_readable_head() -> None:
    long_id = "mission:2026.acme-industries:" + "x" * 71
    number = bpf_number(long_id, "2026-11")
    assert len(number) == 35
    assert number.startswith("BPF-mission_+") and number.endswith("-2026-11")
    assert bpf_number("a.b", "2026-11").startswith("BPF-a_b+")
    # 24 characters: one too many to be printed as is.
    assert "+" in bpf_number("A" * 24, "2026-11")
    # The hashed form holds `+`, which no platform id holds: it never equals a plain number.
    assert bpf_number("a.b", "2026-11") != bpf_number("a_b", "2026-11")
    assert bpf_number("a:b", "2026-11") != bpf_number("a.b", "2026-11")


def test_invoice_and_credit_note_numbers_are_the_issuers_series() -> None:
    assert invoice_number("732829320", 1) == "F-732829320-000001"
    assert credit_note_number("732829320", 42) == "AV-732829320-000042"
    assert invoice_number("732829320", 1_234_567) == "F-732829320-1234567"
    assert len(credit_note_number("732829320", 10**20)) <= 35
    assert document_number(
        DocumentKind.INVOICE, issuer_siren="732829320", sequence=7
    ) == invoice_number("732829320", 7)


@pytest.mark.parametrize(
    ("kind", "inputs"),
    [
        (DocumentKind.BPF, {"mission_id": "M-1", "month": "2026-13"}),
        (DocumentKind.BPF, {"mission_id": "", "month": "2026-11"}),
        (DocumentKind.BPF, {"month": "2026-11"}),
        (DocumentKind.INVOICE, {"issuer_siren": "12345678", "sequence": 1}),
        (DocumentKind.INVOICE, {"issuer_siren": "732829320", "sequence": 0}),
        (DocumentKind.CREDIT_NOTE, {"issuer_siren": "732829320"}),
        (DocumentKind.CREDIT_NOTE, {"issuer_siren": "732829320", "sequence": 10**40}),
    ],
)
def test_inputs_that_are_not_the_kinds_are_refused(
    kind: DocumentKind, inputs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        document_number(kind, **inputs)  # type: ignore[arg-type]
