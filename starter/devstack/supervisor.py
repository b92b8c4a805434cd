"""`contracting dev --supervise`: when to restart a service that died, and how to keep one down.

A supervised stack restarts a service that exits (a crash, a `kill -9`) after a short backoff,
at most `RESTARTS_PER_MINUTE` times a minute, instead of stopping everything; a fault
experiment (tests/faults/) or a person keeps one service down by creating the file
`<var>/hold/<service>` and brings it back by deleting it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

RESTARTS_PER_MINUTE = 10
"""More restarts than this within 60 s: the service is broken, not unlucky; the stack stops."""

QUICK_RESTART = 0.5
"""Seconds before restarting a service that had been running for `STABLE_AFTER` seconds."""

MAX_BACKOFF = 15.0
STABLE_AFTER = 10.0


def hold_directory(var_dir: Path) -> Path:
    """Where the hold files live."""
    return var_dir / "hold"


def hold_file(var_dir: Path, service: str) -> Path:
    """While this file exists the supervisor keeps `service` (`worker`, `gateway`,
    `postgres`, `mailsink`, `temporal`) stopped."""
    return hold_directory(var_dir) / service


@dataclass
class RestartPolicy:
    """A service's restarts: a backoff doubling while it keeps dying young, and a bound."""

    restarts: deque[float] = field(default_factory=deque)
    backoff: float = 0.0

    def next_delay(self, ran_for: float, now: float) -> float | None:
        """Seconds to wait before the next start, or None when it restarted too often."""
        while self.restarts and now - self.restarts[0] > 60.0:
            self.restarts.popleft()
        if len(self.restarts) >= RESTARTS_PER_MINUTE:
            return None
        if ran_for >= STABLE_AFTER or self.backoff == 0.0:
            self.backoff = QUICK_RESTART
        else:
            self.backoff = min(self.backoff * 2, MAX_BACKOFF)
        self.restarts.append(now)
        return self.backoff

    @property
    def recent(self) -> int:
        """Restarts within the last minute (as of the last `next_delay`)."""
        return len(self.restarts)
