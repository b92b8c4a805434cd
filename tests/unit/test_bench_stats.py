"""The benchmark's arithmetic (bench/stats.py): percentiles by nearest rank, the cells and the
markdown table it prints."""

from __future__ import annotations

import pytest

from bench.stats import Latency, markdown_table, percentile, rate, ratio, seconds


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(200, 0, -1)]  # 200 values, unordered
    assert percentile(values, 50) == 100.0
    assert percentile(values, 99) == 198.0  # the 198th smallest of 200
    assert percentile(values, 100) == 200.0
    assert percentile(values, 0) == 1.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_a_percentile_outside_0_100_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_latency_cells_read_in_ms_under_a_second() -> None:
    assert Latency.of([0.2, 0.25, 3.0]).cell() == "p50 250 ms, p99 3.0 s (n=3)"
    assert Latency.of([]).cell() == "—"
    assert seconds(0.0125) == "12 ms"
    assert seconds(22.54) == "22.5 s"


def test_rates_and_ratios() -> None:
    assert rate(200, 40.0) == 5.0
    assert rate(0, 40.0) is None
    assert rate(10, 0.0) is None
    assert ratio(2.9, 58.0) == "5 %"
    assert ratio(None, 58.0) == "—"
    assert ratio(2.9, None) == "—"


def test_the_table_is_markdown_and_escapes_pipes() -> None:
    table = markdown_table(["figure", "value"], [["a|b", "1"], ["c", "2"]])
    assert table.splitlines() == [
        "| figure | value |",
        "|---|---|",
        "| a\\|b | 1 |",
        "| c | 2 |",
    ]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="has 1 cells, the header 2"):
        markdown_table(["figure", "value"], [["lonely"]])
