"""The dunning scan benchmark (bench/dunning_scan.py, run by `make bench` on 1 M invoices) on a
small table: the scheduler's claims find exactly the due steps the plain indexed scan reads."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import dunning_scan  # noqa: E402


async def test_the_scheduler_pass_finds_every_due_step_the_scan_reads(make_database):
    lines: list[str] = []
    result = await dunning_scan.measure(make_database("scan"), invoices=3000, due_share=0.1, batch=50, repeat=1,
                                        say=lines.append)
    table = result["table"]
    assert table["schedule_rows"] == 15000 and table["due_invoices"] > 100, "enough due invoices for several claims"
    assert table["due_steps"] >= table["due_invoices"]
    assert result["ratio"] is not None and "goal ≤ 10×" in lines[-1]
