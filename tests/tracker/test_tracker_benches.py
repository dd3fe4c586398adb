"""The tracker's benchmarks (bench/tracker_clicks.py, bench/tracker_sweep.py, run by `make bench`) on a
tiny scale: they measure what they claim (every click answered 303 by both servers; the sweep opens
exactly the incidents of the due timers, over more than one batch), with no timing asserted."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import tracker_clicks, tracker_sweep  # noqa: E402


async def test_the_sweep_bench_opens_one_incident_per_due_timer(make_database):
    lines: list[str] = []
    result = await tracker_sweep.measure(make_database("sweep"), invoices=3000, due_share=0.02, batch=16,
                                         say=lines.append)
    assert result["table"]["due"] > 2 * 16, "several batches, and more executions than a prepared statement's custom plans"
    assert result["fired"] == result["table"]["due"] and "a pass with nothing due" in lines[-1]


async def test_the_click_bench_drives_both_servers(pg_server, kafka, tmp_path):
    lines: list[str] = []
    result = await tracker_clicks.measure(server_dsn=pg_server, bootstrap=kafka, log_dir=tmp_path, seconds=1,
                                          connections=4, invoices=20, say=lines.append)
    for server in ("bare", "tracker"):
        assert set(result[server]["flat_out"]["statuses"]) == {303} and result[server]["flat_out"]["requests"] > 0
        assert result[server]["paced"]["p99_ms"] is not None
    assert result["ratio"] is not None and "of the bare rate" in lines[-1]
