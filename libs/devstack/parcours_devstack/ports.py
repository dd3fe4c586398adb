"""Free loopback ports and readiness waits."""

import itertools
import os
import random
import socket
import time

# Ports are handed out below the kernel's ephemeral range (32768+), so no outgoing connection or
# bind(0) of another process takes one between our check and the service's bind; parallel test
# workers (pytest-xdist: PYTEST_XDIST_WORKER=gwN) each draw from their own slice of it.
_FIRST, _SLICE = 10000, 5000


def _candidates():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    slot = int(worker[2:]) % 4 if worker.startswith("gw") and worker[2:].isdigit() else None
    low, size = (_FIRST + slot * _SLICE, _SLICE) if slot is not None else (_FIRST, 4 * _SLICE)
    start = random.randrange(size)
    return itertools.cycle([low + (start + i) % size for i in range(size)])


_next_candidate = _candidates()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, not handed out recently by this process."""
    for _ in range(4 * _SLICE):
        port = next(_next_candidate)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError("no free port")


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
            time.sleep(0.05)
