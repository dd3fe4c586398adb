"""The benchmark's shape from its arguments: the one-box defaults, and refusals that say what was expected."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run  # noqa: E402


def test_by_default_channels_runs_twice_and_the_paced_run_posts_like_the_throughput_run():
    args = run.parse_args(["--batch-size", "50"])
    assert args.replicas == {"channels": 2}
    assert args.latency_batch == 50


def test_replicas_given_add_to_the_default_or_replace_it():
    assert run.parse_args(["--replicas", "tracker=2"]).replicas == {"channels": 2, "tracker": 2}
    assert run.parse_args(["--replicas", "channels=1"]).replicas == {"channels": 1}


@pytest.mark.parametrize("bad", ["mailer=2", "channels=0", "channels", "channels=two"])
def test_a_replica_count_that_is_not_a_service_and_a_positive_number_is_refused(bad, capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--replicas", bad])
    assert f"--replicas {bad}: expected SERVICE=N" in capsys.readouterr().err
