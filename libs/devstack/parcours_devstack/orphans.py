"""Child processes of the dev stack and the tests die with their parent, so an interrupted
run leaves no broker, database or service behind."""

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for subprocess.Popen (Linux): the child gets SIGTERM when the thread that
    started it exits, so start children from the main thread."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
