"""The run's picture: invoices sent and tracked over the throughput run (with the rate), and the
latency of every invoice of the paced run. Written as a PNG next to the run's JSON.

`python -m bench.plot bench/results/<stamp>.json` redraws it from a JSON written earlier."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or a server
import matplotlib.pyplot as plt  # noqa: E402


def _rate(series: list[dict], key: str) -> tuple[list[float], list[float]]:
    """Per-second rate of a cumulative count, over windows of about two seconds."""
    times, rates = [], []
    for before, after in zip(series, series[4:]):
        span = after["t"] - before["t"]
        if span > 0:
            times.append(after["t"])
            rates.append((after[key] - before[key]) / span)
    return times, rates


def draw(result: dict, path: Path) -> Path:
    e2e = result.get("e2e") or {}
    latency = result.get("latency") or {}
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    series = e2e.get("series") or []
    if series:
        times = [s["t"] for s in series]
        top.plot(times, [s["sent"] for s in series], label="sent (SMTP accepted)", color="tab:blue")
        top.plot(times, [s["tracked"] for s in series], label="dispatched & tracked", color="tab:green")
        posted = e2e.get("posted_series") or []
        if posted:
            top.plot([t for t, _ in posted], [n for _, n in posted], label="accepted by ingest",
                     color="tab:grey", linestyle="--")
        top.set_xlabel("seconds since the first POST")
        top.set_ylabel("invoices")
        rate_axis = top.twinx()
        rate_times, rates = _rate(series, "tracked")
        rate_axis.plot(rate_times, rates, color="tab:orange", alpha=0.6, label="tracked per second")
        rate_axis.set_ylabel("invoices / s")
        lines = top.get_legend_handles_labels()[0] + rate_axis.get_legend_handles_labels()[0]
        top.legend(lines, [line.get_label() for line in lines], loc="upper left")
        bare = (result.get("bare") or {}).get("rate")
        title = f"E2E throughput: {e2e.get('e2e_rate') or 0:.0f}/s"
        top.set_title(title + (f" (bare pipeline {bare:.0f}/s)" if bare else ""))
    else:
        top.text(0.5, 0.5, "no throughput run", ha="center")
    samples = latency.get("samples") or []
    if samples:
        bottom.scatter([t for t, _ in samples], [ms for _, ms in samples], s=4, color="tab:purple")
        quantiles = latency.get("to_tracked_ms") or {}
        for name, style in (("p50", ":"), ("p99", "--")):
            if quantiles.get(name) is not None:
                bottom.axhline(quantiles[name], linestyle=style, color="black", linewidth=0.8,
                               label=f"{name} {quantiles[name]:.0f} ms")
        bottom.set_xlabel("seconds since the first paced POST")
        bottom.set_ylabel("ms from 202 to tracked")
        bottom.set_title(f"Latency at {latency.get('target_rate', 0):.0f} invoices/s")
        bottom.legend(loc="upper left")
    else:
        bottom.text(0.5, 0.5, "no latency run", ha="center")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main() -> None:
    import json

    source = Path(sys.argv[1])
    print(draw(json.loads(source.read_text()), source.with_suffix(".png")))


if __name__ == "__main__":
    main()
