"""The unhurried services (dunning, the portal) yield the CPU to the delivery path on a shared box."""

import os
import re
import subprocess
import sys

from parcours_channels.config import Settings as ChannelsSettings
from parcours_dunning.config import Settings as DunningSettings
from parcours_ingest.config import Settings as IngestSettings
from parcours_portal.config import Settings as PortalSettings
from parcours_router.config import Settings as RouterSettings
from parcours_tracker.config import Settings as TrackerSettings


def test_only_the_unhurried_services_lower_their_priority_by_default():
    defaults = {settings.__module__.split(".")[0]: settings.model_fields["cpu_niceness"].default
                for settings in (IngestSettings, RouterSettings, ChannelsSettings, TrackerSettings, DunningSettings,
                                 PortalSettings)}
    assert defaults == {"parcours_ingest": 0, "parcours_router": 0, "parcours_channels": 0, "parcours_tracker": 0,
                        "parcours_dunning": 19, "parcours_portal": 19}


def _autogroup_nice(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            line = f.read()
    except FileNotFoundError:
        return None  # a kernel without autogroups: niceness alone decides
    match = re.fullmatch(r"/autogroup-\d+ nice (-?\d+)\s*", line)
    return int(match[1]) if match else None  # some sandboxes (gVisor) show the file empty


def test_a_service_process_starts_at_its_niceness_and_lowers_its_session_too(spawn_service):
    """Under autogroup scheduling a niceness counts only inside the session; spawned services lead their own."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    router = spawn_service("router")
    portal = spawn_service("portal", extra={"CPU_NICENESS": "3"})
    for process in (router, portal):
        process.wait_ready(90)
    assert os.getpriority(os.PRIO_PROCESS, router.process.pid) == ours
    assert os.getpriority(os.PRIO_PROCESS, portal.process.pid) == min(19, ours + 3)
    if _autogroup_nice(os.getpid()) is not None:
        assert _autogroup_nice(router.process.pid) == 0
        assert _autogroup_nice(portal.process.pid) == 3


def test_a_process_in_someone_elses_session_leaves_that_session_alone():
    ours = _autogroup_nice(os.getpid())
    child = subprocess.run([sys.executable, "-c", "import os; from parcours_runtime.service import lower_cpu_priority; "
                            "lower_cpu_priority(4); print(os.getpriority(os.PRIO_PROCESS, 0))"],
                           capture_output=True, text=True, check=True)
    assert int(child.stdout) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 4)
    assert _autogroup_nice(os.getpid()) == ours
