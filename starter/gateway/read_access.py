"""Who may read missions through the gateway: bearer tokens with roles, and a rate limit.

The read routes (`GET /missions/{id}`, `/explain`, `/documents[/{name}]`) sit on the same
public port as `POST /events` (the platform must reach that one): they are never anonymous.
`CONTRACTING_READ_TOKENS` = `role:token,...` gives each reader a token and a role:

- `support`: a mission, its explanation one month at a time, its billing documents (PDFs);
- `ops`: the same, and an explanation over a range of months (`?from=&to=`, bounded).

No token configured: the read routes answer 403 saying so (the dev stack configures one).
A missing or wrong token is a 401 (compared in constant time against every configured token),
a role that may not read this a 403. `explain` costs one token of the caller's bucket
(`TokenBucket`), refilled at `CONTRACTING_READ_EXPLAIN_PER_MINUTE`: past it, 429 with
`Retry-After`. The buckets live in the gateway process: N gateways allow N times the rate.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from settings import Settings

Role = Literal["support", "ops"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_TOKEN_LENGTH = 16


class ReadTokensInvalid(ValueError):
    """`CONTRACTING_READ_TOKENS` is malformed: says which entry and how to fix it."""


@dataclass(frozen=True)
class Reader:
    """An authenticated reader: its role and a stable id of its token (for the buckets and
    the logs; never the token itself)."""

    role: Role
    token_id: str


@dataclass(frozen=True)
class ReadTokens:
    """The configured tokens; empty when none is (the read routes are then disabled)."""

    entries: tuple[tuple[Role, bytes], ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> ReadTokens:
        """`role:token,role:token`; whitespace around entries is ignored."""
        entries: list[tuple[Role, bytes]] = []
        for position, item in enumerate((raw or "").split(","), start=1):
            item = item.strip()
            if not item:
                continue
            role, sep, token = item.partition(":")
            role, token = role.strip(), token.strip()
            if not sep or role not in ROLES:
                raise ReadTokensInvalid(
                    f"CONTRACTING_READ_TOKENS entry {position} must be 'role:token' with a role "
                    f"among {', '.join(ROLES)}, got role {role!r}"
                )
            if len(token) < MIN_TOKEN_LENGTH:
                raise ReadTokensInvalid(
                    f"CONTRACTING_READ_TOKENS entry {position} ({role}): the token must be at "
                    f"least {MIN_TOKEN_LENGTH} characters (e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'`)"
                )
            if any(hmac.compare_digest(token.encode(), known) for _, known in entries):
                raise ReadTokensInvalid(
                    f"CONTRACTING_READ_TOKENS entry {position}: this token is already given "
                    "to another entry; give each reader its own"
                )
            entries.append((role, token.encode()))
        return cls(tuple(entries))

    @property
    def configured(self) -> bool:
        return bool(self.entries)

    def reader(self, presented: str) -> Reader | None:
        """The reader holding `presented`, or None. Every configured token is compared, in
        constant time, so the answer's timing tells nothing of which one is near."""
        candidate = presented.encode()
        found: Reader | None = None
        for role, token in self.entries:
            if hmac.compare_digest(candidate, token) and found is None:
                found = Reader(role=role, token_id=hashlib.sha256(token).hexdigest()[:12])
        return found

    def first(self, preferred: Role = "ops") -> str | None:
        """The token a client of this gateway on the same machine sends (the demo)."""
        ordered = sorted(self.entries, key=lambda entry: entry[0] != preferred)
        return ordered[0][1].decode() if ordered else None


@dataclass
class TokenBucket:
    """Per-key token buckets: `burst` requests at once, refilled at `per_minute`."""

    per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> float | None:
        """Spend one request of `key`'s bucket: None when allowed, else the seconds until
        one is available (the `Retry-After`)."""
        now = self.clock()
        level, since = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - since) * self.per_minute / 60.0)
        if level >= 1.0:
            self._buckets[key] = (level - 1.0, now)
            return None
        self._buckets[key] = (level, now)
        return (1.0 - level) * 60.0 / self.per_minute

    @staticmethod
    def retry_after(seconds: float) -> str:
        """Whole seconds, at least 1 (the header takes an integer)."""
        return str(max(1, math.ceil(seconds)))


def client_read_token(settings: Settings) -> str | None:
    """The read token a client of the gateway sends (`contracting demo`): the first `ops`
    token of CONTRACTING_READ_TOKENS, else the first one, else the dev stack's
    (`<var_dir>/read-token`, written by `contracting dev`); None when there is none."""
    raw = settings.read_tokens.get_secret_value() if settings.read_tokens else None
    configured = ReadTokens.parse(raw).first("ops")
    if configured is not None or raw:
        return configured
    dev_token = Path(settings.var_dir) / "read-token"
    return (dev_token.read_text().strip() or None) if dev_token.is_file() else None
