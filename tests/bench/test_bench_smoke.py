"""The benchmark harness still runs end to end (tiny N, no timing assertions: figures from a
test run mean nothing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run  # noqa: E402
from parcours_devstack.services import SERVICES  # noqa: E402


@pytest.mark.slow
async def test_bench_runs_end_to_end_and_writes_its_results(tmp_path):
    args = run.parse_args(["--invoices", "20", "--concurrency", "4", "--latency-seconds", "1",
                           "--stall-seconds", "60", "--out", str(tmp_path), "--batch-size", "8",
                           # the component benchmarks, tiny: the harness must run, not measure
                           "--tracker-invoices", "100", "--click-seconds", "1", "--dunning-invoices", "200",
                           "--split-pages", "20", "--mails", "20", "--ingest-seconds", "1"])

    result = await run.main_async(args)

    written = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert next(tmp_path.glob("*.png")).read_bytes().startswith(b"\x89PNG"), "the run's plot is drawn"
    assert written["meta"]["invoices"] == 20
    assert result["bare"]["mails_sent"] == 20
    assert result["bare"]["cpu_ms_per_invoice"]["bare"] > 0, "its CPU is read while it still runs"
    assert result["bare_floor"]["floor"] and result["bare_floor"]["mails_sent"] == 20
    assert result["e2e"]["complete"] and result["e2e"]["missing"] == 0
    during, all_told = result["e2e"]["cpu_ms_per_invoice"], result["e2e"]["cpu_ms_per_invoice_with_catch_up"]
    assert all_told.keys() == during.keys() and all(all_told[role] >= during[role] for role in during), \
        "the work done after the run (less the idle cost) adds to each process's CPU per invoice"
    assert result["latency"]["to_tracked_ms"]["n"] == result["latency"]["invoices"]
    # The goal's paced run posts as the throughput run did; the same rate one invoice per POST follows it.
    assert result["latency"]["invoices_per_post"] == 8 and result["latency_single"]["invoices_per_post"] == 1
    assert result["latency_single"]["to_tracked_ms"]["n"] == result["latency_single"]["invoices"]
    assert set(SERVICES) <= set(result["memory_peak_mb"])
    assert {g["status"] for g in result["goals"]} <= {"PASS", "MISS", "n/a"}
    assert result["ingest_json"]["ingest"]["flat_out"]["statuses"].keys() == {202}
    assert result["ingest_facturx"]["builds"] == 20 and result["ingest_facturx"]["facturx_per_core_s"] > 0
    assert result["mail_sign"]["messages"] == 20 and result["mail_sign"]["accepted_per_s"] > 0
