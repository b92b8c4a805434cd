"""The benchmark's arithmetic and its markdown table: kept apart from the stack so that it can
be unit-tested (tests/unit/test_bench_stats.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0–100) by nearest rank: the smallest value that at least q % of
    the values do not exceed (p99 of 200 values is the 198th smallest). None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """p50/p99 of a set of durations in seconds, and how many there were."""

    count: int
    p50: float | None
    p99: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(len(seconds), percentile(seconds, 50), percentile(seconds, 99))

    def cell(self) -> str:
        if self.p50 is None or self.p99 is None:
            return "—"
        return f"p50 {seconds(self.p50)}, p99 {seconds(self.p99)} (n={self.count})"


def seconds(value: float) -> str:
    """A duration for a reader: milliseconds under a second, else seconds."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


def rate(count: int, elapsed: float) -> float | None:
    """Completions per second, None when nothing was timed."""
    return count / elapsed if elapsed > 0 and count > 0 else None


def ratio(value: float | None, floor: float | None) -> str:
    """`value` as a percentage of the floor."""
    if value is None or not floor:
        return "—"
    return f"{100 * value / floor:.0f} %"


def per_second(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}/s"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; every row must have as many cells as the header."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)} has {len(row)} cells, the header {len(header)}")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
