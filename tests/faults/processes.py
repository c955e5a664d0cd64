"""Killing a process the way an OOM kill or a power cut would: SIGKILL to it and to its children.

An RQ worker forks a "work horse" per job and puts it in a process group of its own (os.setpgrp), so a
signal to the worker's group does not reach the job that is running: the children are found by their
parent id in /proc and killed too."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def children(pid: int) -> list[int]:
    """The ids of the processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Children, their children and so on."""
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def kill_tree(pid: int) -> int:
    """SIGKILL `pid` and its descendants (those first, so none is left running). Returns how many
    descendants there were."""
    kids = descendants(pid)
    for child in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return len(kids)
