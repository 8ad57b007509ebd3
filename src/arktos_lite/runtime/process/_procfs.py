"""What /proc says about processes: identity (pid + start time), liveness, groups, usage.

A pid alone does not name a process across a runtime restart (pids are reused), so a
process is identified by its pid and its start time in clock ticks since boot (field 22 of
`/proc/<pid>/stat`). Every function here tolerates processes vanishing while it reads.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/<pid>/stat this runtime uses."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    utime: int
    stime: int
    start_time: int
    rss_pages: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X", "x")


def stat(pid: int) -> ProcStat | None:
    """The process's stat line, or None when there is no such process."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may itself contain spaces and parentheses.
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=rest[0].decode(),
            ppid=int(rest[1]),
            pgrp=int(rest[2]),
            utime=int(rest[11]),
            stime=int(rest[12]),
            start_time=int(rest[19]),
            rss_pages=int(rest[21]),
        )
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    st = stat(pid)
    return None if st is None else st.start_time


def is_running(pid: int, started: int) -> bool:
    """True while the process that had `pid` and start time `started` is alive (not a zombie)."""
    st = stat(pid)
    return st is not None and st.start_time == started and not st.zombie


def all_pids() -> Iterator[int]:
    try:
        names = os.listdir(PROC)
    except OSError:
        return
    for name in names:
        if name.isdigit():
            yield int(name)


def group_members(pgid: int) -> list[ProcStat]:
    """Live processes whose process group is `pgid`."""
    found = []
    for pid in all_pids():
        st = stat(pid)
        if st is not None and st.pgrp == pgid and not st.zombie:
            found.append(st)
    return found


def children(pid: int) -> list[int]:
    """Direct children of a process (needs CONFIG_PROC_CHILDREN; else scans /proc)."""
    try:
        text = (PROC / str(pid) / "task" / str(pid) / "children").read_text()
    except FileNotFoundError:
        return [st.pid for p in all_pids() if (st := stat(p)) is not None and st.ppid == pid]
    except (ProcessLookupError, PermissionError):
        return []
    return [int(p) for p in text.split()]


def cpu_nanoseconds(procs: Iterable[ProcStat]) -> int:
    return sum(p.utime + p.stime for p in procs) * 1_000_000_000 // CLOCK_TICKS


def rss_bytes(procs: Iterable[ProcStat]) -> int:
    return sum(p.rss_pages for p in procs) * PAGE_SIZE
