"""HMAC-SHA256 signatures of event bodies (`X-Signature: sha256=<hex>`, docs/events.md).

The signature covers a Unix timestamp sent beside it (`X-Signature-Timestamp`) and the raw
body: `HMAC(secret, "<timestamp>." + body)`. The gateway refuses a timestamp more than a few
minutes from its clock, so a captured request cannot be replayed later; the body alone
(the legacy scheme) is accepted only where a setting allows it, for a platform migrating."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
_PREFIX = "sha256="
_WELL_FORMED = re.compile(r"sha256=[0-9a-fA-F]{64}")
"""ASCII only: a header with any other byte is refused before any comparison
(`hmac.compare_digest` raises on non-ASCII strings)."""
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `X-Signature` value for this raw body, signed at `timestamp` (Unix seconds), or
    over the body alone (legacy scheme) without one."""
    message = body if timestamp is None else f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{_PREFIX}{digest}"


def signed_headers(body: bytes, secret: str, *, now: float | None = None) -> dict[str, str]:
    """The headers the platform sends with this body, signed `now` (the current time by
    default): every signer of the project (client, demo, tests) goes through here."""
    timestamp = int(time.time() if now is None else now)
    return {SIGNATURE_HEADER: sign(body, secret, timestamp), TIMESTAMP_HEADER: str(timestamp)}


@dataclass(frozen=True)
class Verifier:
    """How the gateway checks signatures: its secrets (several during a rotation, any of which
    validates), how far a signature's timestamp may be from its clock, and whether the legacy
    body-only scheme is still accepted."""

    secrets: tuple[str, ...]
    tolerance_seconds: int = 300
    allow_untimestamped: bool = False

    def problem(
        self,
        body: bytes,
        signature: str | None,
        timestamp: str | None,
        *,
        now: float | None = None,
    ) -> str | None:
        """Why the headers do not sign the body (a sentence for the 401), or None when they do.

        The headers' form is checked first, so that malformed or non-ASCII input is named
        instead of reaching the constant-time comparison; the comparison is on bytes."""
        if signature is None or not signature.strip():
            return (
                f"missing {SIGNATURE_HEADER} header: send '{_PREFIX}<hex HMAC-SHA256 of "
                '"<timestamp>.<body>" with the shared secret>\''
            )
        value = signature.strip()
        if not value.startswith(_PREFIX):
            return f"{SIGNATURE_HEADER} must start with '{_PREFIX}'"
        if not _WELL_FORMED.fullmatch(value):
            return f"{SIGNATURE_HEADER} must be '{_PREFIX}' followed by 64 hexadecimal digits"
        signed_at: int | None = None
        if timestamp is None or not timestamp.strip():
            if not self.allow_untimestamped:
                return (
                    f"missing {TIMESTAMP_HEADER} header: send the Unix time of signing and sign "
                    "'<timestamp>.<body>'"
                )
        elif not _TIMESTAMP.fullmatch(timestamp.strip()):
            return f"{TIMESTAMP_HEADER} must be a Unix time in seconds (digits only)"
        else:
            signed_at = int(timestamp.strip())
            drift = int((time.time() if now is None else now) - signed_at)
            if abs(drift) > self.tolerance_seconds:
                when = "old" if drift > 0 else "ahead of the gateway's clock"
                return (
                    f"{TIMESTAMP_HEADER} is {abs(drift)} seconds {when}, more than the "
                    f"{self.tolerance_seconds} seconds allowed: sign each delivery when "
                    "sending it (a retry is signed again)"
                )
        given = value.lower().encode("ascii")
        matches = [
            hmac.compare_digest(sign(body, secret, signed_at).encode("ascii"), given)
            for secret in self.secrets  # every one, so the time says nothing of which matched
        ]
        if not any(matches):
            return (
                f"{SIGNATURE_HEADER} does not match the body: sign '<timestamp>.<body>' (the "
                "exact bytes you send) with the shared secret (HMAC-SHA256)"
            )
        return None


def is_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of a legacy (body only) signature against the body."""
    verifier = Verifier((secret,), allow_untimestamped=True)
    return verifier.problem(body, header, None) is None
