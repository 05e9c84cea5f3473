"""Processes an interrupted job left behind.

When caravan is killed with -9, the shell of a running command dies with it (parent-death
signal), but what that shell started is reparented and runs on. Before such a job runs again,
every process still working inside the job's directory is killed, so two runs of one action
never overlap. Linux only (it reads /proc); elsewhere nothing is found.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def processes_in(directory: Path) -> Iterator[int]:
    """Pids of processes whose working directory is ``directory`` or below it."""
    root = os.path.realpath(directory)
    if not PROC.is_dir():
        return
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue  # gone, or not ours to inspect
        if cwd == root or cwd.startswith(root + os.sep):
            yield int(entry.name)


def kill_leftovers(directory: Path) -> list[int]:
    """SIGKILL every process working inside ``directory``; the pids that were signalled."""
    killed = []
    for pid in processes_in(directory):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append(pid)
    return killed
