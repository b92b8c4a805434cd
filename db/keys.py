"""Idempotency keys that always fit their column.

Keys are composed of ids (`<kind>:<mission id>:<event id>`, an outbox key plus a recipient…);
with the longest ids the contract accepts (`schemas/limits.py`) a composition can pass
`KEY_LENGTH`, and a key the database refuses would fail its transition for ever. A key that
fits is kept as is (readable, and every key written so far stays the same); a longer one keeps
its readable head and ends with the SHA-256 of the whole key, so it is still deterministic
(a retry finds it) and distinct from every other key.
"""

from __future__ import annotations

import hashlib

from schemas.limits import KEY_LENGTH

_DIGEST = 64  # hex characters of a SHA-256


def fit_key(key: str, limit: int = KEY_LENGTH) -> str:
    """`key` itself when it fits `limit`, else its head, `#` and the SHA-256 of the whole."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: limit - _DIGEST - 1]}#{digest}"
