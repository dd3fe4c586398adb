"""Resident memory and CPU of the processes under test, sampled from a thread every 200 ms
(a thread, so that a busy driver loop does not skip samples)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class Watched:
    role: str
    process: psutil.Process
    tree: bool  # PostgreSQL: the postmaster and its backends together
    peak_rss: int = 0
    cpu_marks: dict[str, float] = field(default_factory=dict)


class ProcessMonitor:
    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self._watched: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[dict] = []  # {"t": …, "cpu_percent": …, "rss_mb": {role: …}} every ~1 s
        self._sys_marks: dict[str, tuple[float, object]] = {}

    def watch(self, role: str, pid: int, *, tree: bool = False) -> None:
        with self._lock:
            self._watched[role] = Watched(role, psutil.Process(pid), tree)

    def reset_peaks(self) -> None:
        with self._lock:
            for w in self._watched.values():
                w.peak_rss = 0

    def start(self) -> "ProcessMonitor":
        psutil.cpu_percent()  # prime the system-wide counter
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _processes(self, w: Watched) -> list[psutil.Process]:
        if not w.tree:
            return [w.process]
        try:
            return [w.process, *w.process.children(recursive=True)]
        except psutil.Error:
            return [w.process]

    def _rss(self, w: Watched) -> int:
        total = 0
        for p in self._processes(w):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def cpu_seconds(self, role: str) -> float:
        """User + system CPU of the role so far (for a tree: of the processes alive now)."""
        w = self._watched[role]
        total = 0.0
        for p in self._processes(w):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def mark(self, label: str) -> None:
        """Remember every role's CPU time now, to diff two marks later."""
        with self._lock:
            for role, w in self._watched.items():
                w.cpu_marks[label] = self.cpu_seconds(role)
        self._sys_marks[label] = (time.time(), psutil.cpu_times())

    def cpu_between(self, start: str, end: str) -> dict[str, float]:
        return {role: round(w.cpu_marks[end] - w.cpu_marks[start], 3)
                for role, w in self._watched.items() if start in w.cpu_marks and end in w.cpu_marks}

    def system_busy_between(self, start: str, end: str) -> float:
        """Mean share of all cores busy between two marks (0–1)."""
        (_, c0), (_, c1) = self._sys_marks[start], self._sys_marks[end]
        idle = (c1.idle + getattr(c1, "iowait", 0)) - (c0.idle + getattr(c0, "iowait", 0))
        total = sum(c1) - sum(c0)
        return round(1 - idle / total, 3) if total > 0 else 0.0

    def seconds_between(self, start: str, end: str) -> float:
        return round(self._sys_marks[end][0] - self._sys_marks[start][0], 3)

    def busy_cpu_seconds_between(self, start: str, end: str) -> float:
        """CPU seconds the whole box spent busy between two marks (every process, ours or not)."""
        (_, c0), (_, c1) = self._sys_marks[start], self._sys_marks[end]
        idle = (c1.idle + getattr(c1, "iowait", 0)) - (c0.idle + getattr(c0, "iowait", 0))
        return round(sum(c1) - sum(c0) - idle, 3)

    def wait_idle(self, roles: list[str], *, below: float = 0.1, window: float = 2.0, timeout: float = 300) -> float:
        """Block until each role used less than `below` of a core over `window` seconds (backlogs
        drained: a consumer still catching up would distort what runs next); returns seconds waited."""
        started = time.time()
        while time.time() - started < timeout:
            before = {r: self.cpu_seconds(r) for r in roles}
            time.sleep(window)
            if all((self.cpu_seconds(r) - before[r]) / window < below for r in roles):
                break
        return round(time.time() - started, 1)

    def peaks_mb(self) -> dict[str, float]:
        with self._lock:
            return {role: round(w.peak_rss / 2**20, 1) for role, w in self._watched.items()}

    def _run(self) -> None:
        last_series = 0.0
        while not self._stop.wait(self.interval):
            with self._lock:
                rss = {}
                for role, w in self._watched.items():
                    rss[role] = self._rss(w)
                    w.peak_rss = max(w.peak_rss, rss[role])
            now = time.time()
            if now - last_series >= 1.0:
                last_series = now
                self.samples.append({"t": round(now, 3), "cpu_percent": psutil.cpu_percent(),
                                     "rss_mb": {r: round(v / 2**20, 1) for r, v in rss.items()}})
