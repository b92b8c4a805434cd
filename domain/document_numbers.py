"""Every document number the platform prints — BPF, invoice, credit note — in one function.

A document number is at most 35 characters of `A-Z a-z 0-9 + - _ /` (the Factur-X / EN 16931
document identifier as the French CTC rules BR-FR-01 and BR-FR-02 bound it; the rule lives in
`schemas.billing.DocumentNumber`, which every rendered document checks). The platform's ids
are up to 100 characters and may hold `.` and `:` (`schemas.common.PlatformId`), so a number
never embeds an id it cannot hold:

- invoice `F-<SIREN>-000001` and credit note `AV-<SIREN>-000001`: 18 and 19 characters, a
  SIREN is 9 digits (a sequence past 999,999 only adds digits: still far below 35);
- BPF `BPF-<mission>-<YYYY-MM>` when the mission id fits as it is (at most 23 characters,
  none of them `.` or `:`) — the numbers issued so far, unchanged; otherwise
  `BPF-<first 8 characters of the id, '.' and ':' as '_'>+<14 base32 characters of the
  SHA-256 of the whole id>-<YYYY-MM>`, exactly 35 characters at most. The `+` never occurs in
  a platform id, so a hashed number never equals a plain one; 70 bits of hash keep two
  missions apart; the number depends on the mission id and the month only, so a retry, a
  replay or a re-issue computes the same one.
- the BPF of a later billing period of a month split by a change of terms (issue 11 point 5)
  ends with its period key instead, `BPF-<mission>-<YYYY-MM>-p2`: the mission id fits as it
  is up to 20 characters; hashed, the hash is 3 characters shorter (11 base32 characters,
  55 bits), so the number still holds in 35 characters and differs from the first period's.
"""

from __future__ import annotations

import base64
import hashlib
import re
from enum import StrEnum

DOCUMENT_NUMBER_MAX_LENGTH = 35
_NUMBER = re.compile(r"[A-Za-z0-9+\-_/]{1,35}")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])(-p[2-9])?")
_MONTH_LENGTH = 7
_SIREN = re.compile(r"\d{9}")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_\-]{1,23}")
_PLAIN_MAX = 23
_PREFIX_LENGTH = 8
_HASH_LENGTH = 14


class DocumentKind(StrEnum):
    BPF = "bpf"
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


def document_number(
    kind: DocumentKind,
    *,
    mission_id: str | None = None,
    month: str | None = None,
    issuer_siren: str | None = None,
    sequence: int | None = None,
) -> str:
    """The number of a document of `kind`: a BPF from its mission and month, an invoice or a
    credit note from its issuer's SIREN and its place in the issuer's series. Raises
    ValueError when the inputs are not those of the kind, or the number would break the rule.
    """
    if kind is DocumentKind.BPF:
        if mission_id is None or month is None or not _MONTH.fullmatch(month):
            raise ValueError(f"a BPF number needs a mission id and a YYYY-MM month: {month!r}")
        number = f"BPF-{_mission_key(mission_id, len(month) - _MONTH_LENGTH)}-{month}"
    else:
        if issuer_siren is None or not _SIREN.fullmatch(issuer_siren):
            raise ValueError(f"an {kind} number needs the issuer's SIREN: {issuer_siren!r}")
        if sequence is None or sequence < 1:
            raise ValueError(f"an {kind} number needs a sequence from 1: {sequence!r}")
        prefix = "F" if kind is DocumentKind.INVOICE else "AV"
        number = f"{prefix}-{issuer_siren}-{sequence:06d}"
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"{number!r} is not a document number (35 of A-Z a-z 0-9 + - _ /)")
    return number


def bpf_number(mission_id: str, month: str) -> str:
    """`BPF-<mission>-<YYYY-MM>` (or `-<YYYY-MM-pN>` for a later period of a split month),
    the mission hashed when its id does not fit."""
    return document_number(DocumentKind.BPF, mission_id=mission_id, month=month)


def invoice_number(issuer_siren: str, sequence: int) -> str:
    """The issuer's continuous invoice number: `F-<SIREN>-000001`, `F-<SIREN>-000002`, …

    Continuous per issuer (L441-9) and, with the issuer's SIREN in it, unique on the whole
    platform: `client_payment.received` and `invoice.cancelled` name only the number."""
    return document_number(DocumentKind.INVOICE, issuer_siren=issuer_siren, sequence=sequence)


def credit_note_number(issuer_siren: str, sequence: int) -> str:
    """The issuer's continuous credit-note number, unique platform-wide: `AV-<SIREN>-000001`."""
    return document_number(DocumentKind.CREDIT_NOTE, issuer_siren=issuer_siren, sequence=sequence)


def _mission_key(mission_id: str, suffix: int = 0) -> str:
    """The mission's part of a BPF number, `suffix` characters shorter for a period key."""
    if not mission_id:
        raise ValueError("a BPF number needs a mission id")
    if _PLAIN_ID.fullmatch(mission_id) and len(mission_id) <= _PLAIN_MAX - suffix:
        return mission_id
    digest = hashlib.sha256(mission_id.encode()).digest()
    hashed = base64.b32encode(digest).decode()[: _HASH_LENGTH - suffix]
    readable = re.sub(r"[^A-Za-z0-9_\-]", "_", mission_id[:_PREFIX_LENGTH])
    return f"{readable}+{hashed}"
