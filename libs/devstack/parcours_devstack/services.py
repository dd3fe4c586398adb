"""Start Parcours services as real processes (`python -m parcours_<name>`), for the dev
stack and for tests that need to kill -9 one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from parcours_devstack.orphans import die_with_parent

SERVICES = ("ingest", "router", "channels", "tracker", "dunning", "portal")


def service_env(name: str, *, database_url: str, bootstrap: str, port: int, extra: dict[str, str] | None = None,
                base: dict[str, str] | None = None) -> dict[str, str]:
    prefix = f"PARCOURS_{name.upper()}_"
    env = dict(os.environ if base is None else base)
    env.update({
        prefix + "DATABASE_URL": database_url,
        prefix + "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        prefix + "HTTP_HOST": "127.0.0.1",
        prefix + "HTTP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({prefix + k if not k.startswith("PARCOURS_") else k: v for k, v in (extra or {}).items()})
    return env


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], port: int, log_path: Path | None = None):
        self.name = name
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServiceProcess":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, "-m", f"parcours_{self.name}"], env=self.env,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        if self.log_path:
            out.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> "ServiceProcess":
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process and self.process.returncode}; log: {self.log_path}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout}s; log: {self.log_path}")
            time.sleep(0.1)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait: the graceful path."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
