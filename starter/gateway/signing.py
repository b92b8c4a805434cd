"""HMAC-SHA256 signatures of event bodies (`X-Signature: sha256=<hex>`, docs/events.md)."""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-Signature"
_PREFIX = "sha256="
_WELL_FORMED = re.compile(r"sha256=[0-9a-fA-F]{64}")
"""ASCII only: a header with any other byte is refused before any comparison
(`hmac.compare_digest` raises on non-ASCII strings)."""


def sign(body: bytes, secret: str) -> str:
    """The header value the platform sends for this raw body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{_PREFIX}{digest}"


def signature_problem(body: bytes, header: str | None, secret: str) -> str | None:
    """Why the header does not sign the body (a sentence for the 401), or None when it does.

    The header's form is checked first, so that malformed or non-ASCII input is named instead
    of reaching the constant-time comparison; the comparison is on bytes."""
    if header is None or not header.strip():
        return f"missing {SIGNATURE_HEADER} header"
    value = header.strip()
    if not value.startswith(_PREFIX):
        return f"{SIGNATURE_HEADER} must start with '{_PREFIX}'"
    if not _WELL_FORMED.fullmatch(value):
        return f"{SIGNATURE_HEADER} must be '{_PREFIX}' followed by 64 hexadecimal digits"
    expected = sign(body, secret).encode("ascii")
    if not hmac.compare_digest(expected, value.lower().encode("ascii")):
        return (
            f"{SIGNATURE_HEADER} does not match the body: sign the exact bytes you send with "
            "the shared secret (HMAC-SHA256)"
        )
    return None


def is_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of the header against the body."""
    return signature_problem(body, header, secret) is None
