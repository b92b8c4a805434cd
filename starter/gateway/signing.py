"""HMAC-SHA256 signatures of event bodies (`X-Signature: sha256=<hex>`, EVENTS.md)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature"
_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value the platform sends for this raw body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{_PREFIX}{digest}"


def is_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of the header against the body."""
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret), header.strip())
