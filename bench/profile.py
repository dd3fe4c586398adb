"""Optional py-spy sampling of the services during the throughput run (`--profile`) or the paced
run (`--profile-latency`), and a summary of where their CPU went: by package (self and inclusive)
and the hottest functions."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, out_dir: Path, rate: int = 50, name: str = "profile"):
        self.out_dir = out_dir
        self.name = name
        self.rate = rate
        self._procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, pids: dict[str, int]) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        for role, pid in pids.items():
            out = self.out_dir / f"{self.name}-{role}.txt"
            proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw",
                                     "--nonblocking", "--output", str(out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._procs[role] = (proc, out)

    def stop(self) -> dict[str, dict]:
        for proc, _ in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        summaries = {}
        for role, (proc, out) in self._procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if out.exists():
                summaries[role] = summarise(out.read_text())
        return summaries


def _package(path: str) -> str:
    """py-spy shortens paths to their import root: `asyncpg/prepared_stmt.py`, `asyncio/events.py`."""
    if path.startswith("<"):
        return path
    for marker in ("site-packages/", "/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path.split("/", 1)[0].removesuffix(".py")


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for part in stack.split(";"):
        m = _FRAME.match(part)
        if m and m.group("file"):
            frames.append((m.group("func"), m.group("file")))
    return frames


def summarise(raw: str, top: int = 12) -> dict:
    """From py-spy's collapsed stacks: the top packages/functions by self and total time, in % of the
    samples not waiting in the event loop's select()."""
    self_pkg, incl_pkg, self_fn, incl_fn = Counter(), Counter(), Counter(), Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        if not frames:
            continue
        func, path = frames[-1]
        if func.endswith("select") and path.startswith("selectors"):
            idle += n  # the loop waiting in epoll: py-spy cannot always tell it from running
            continue
        total += n
        self_pkg[_package(path)] += n
        self_fn[f"{func} ({_short(path)})"] += n
        for pkg in {_package(p) for _, p in frames}:
            incl_pkg[pkg] += n
        for name in {f"{f} ({_short(p)})" for f, p in frames if p.startswith("parcours_")}:
            incl_fn[name] += n

    def share(counter: Counter) -> list[list]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)] if total else []

    return {"samples": total, "idle_samples": idle, "self_by_package": share(self_pkg), "total_by_package": share(incl_pkg),
            "self_by_function": share(self_fn), "total_by_parcours_function": share(incl_fn)}


def _short(path: str) -> str:
    for marker in ("site-packages/", "/python3.11/", "/services/", "/libs/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
