"""The goals table judges what the run measured: every process of a service, the posting shape of the paced run."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402


def _goal(result: dict, label: str) -> dict:
    return next(g for g in report.evaluate(result) if g["goal"] == label)


def test_a_replica_over_the_memory_goal_misses_it_and_infrastructure_does_not_count():
    result = {"memory_peak_mb": {"channels": 120.0, "channels-2": 151.5, "router": 90.0, "postgres": 4000.0,
                                 "smtp-sink": 230.0}}
    goal = _goal(result, "peak RSS per service")
    assert (goal["status"], goal["value"]) == ("MISS", 151.5)
    assert goal["detail"] == "max: channels-2; over: channels-2"


def test_the_latency_goal_says_how_the_paced_run_posted_and_shows_the_single_post_figure():
    result = {"latency": {"invoices_per_post": 100, "to_tracked_ms": {"p99": 480.2}},
              "latency_single": {"invoices_per_post": 1, "to_tracked_ms": {"p99": 1012.7}}}
    goal = _goal(result, "latency p99 at ½ max rate")
    assert (goal["status"], goal["shown"]) == ("PASS", "480 ms")
    assert goal["detail"] == "POST /v1/batches of 100; one invoice per POST at the same rate: 1013 ms"


def test_the_ratio_goal_says_how_far_the_architectures_own_mechanics_go_and_where_parcours_stands_against_them():
    result = {"bare": {"rate": 1000.0}, "bare_floor": {"rate": 800.0}, "e2e": {"e2e_rate": 300.0}}
    goal = _goal(result, "E2E / bare pipeline")
    assert (goal["status"], goal["shown"]) == ("MISS", "30.0 %")
    assert goal["detail"] == "the pipeline with contract events, inbox and outbox alone: 80%; E2E is 38% of that"
    assert _goal({"bare": {"rate": 1000.0}, "e2e": {"e2e_rate": 600.0}}, "E2E / bare pipeline")["detail"] == ""
