"""The batch PDF split benchmark (bench/ingest_split.py, run by `make bench`) on a small PDF: the
split finds every invoice and a baseline is measured (no timing asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import ingest_split  # noqa: E402


def test_the_split_benchmark_measures_both_sides():
    lines: list[str] = []
    result = ingest_split.measure(pages=12, pages_per_invoice=3, runs=1, say=lines.append)
    assert result["parcours_pages_pages_per_s"] > 0 and result["parcours_anchor_pages_per_s"] > 0
    assert result["parcours_cut_only_pages_per_s"] > 0 and result["cut_only_ratio"] > 0
    assert result["baseline_pages_per_s"] > 0 and result["ratio"] > 0
    assert "goal ≥ 50%" in lines[-1]
