"""Process identity from /proc: a pid plus its start time."""

from __future__ import annotations

import os
import subprocess
import time

from arktos_lite.runtime.process import _procfs


def test_own_process() -> None:
    st = _procfs.stat(os.getpid())
    assert st is not None
    assert st.pid == os.getpid()
    assert st.ppid == os.getppid()
    assert st.start_time > 0
    assert _procfs.is_running(os.getpid(), st.start_time)
    assert not _procfs.is_running(os.getpid(), st.start_time + 1)


def test_a_zombie_is_not_running() -> None:
    proc = subprocess.Popen(["true"])
    started = _procfs.start_time(proc.pid)
    assert started is not None
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    st = _procfs.stat(proc.pid)
    assert st is not None
    assert st.zombie
    assert not _procfs.is_running(proc.pid, started)
    proc.wait()
    assert _procfs.stat(proc.pid) is None


def test_group_members_and_children() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 5 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while len(_procfs.group_members(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        members = {p.pid for p in _procfs.group_members(proc.pid)}
        assert proc.pid in members
        assert len(members) == 2
        assert _procfs.children(proc.pid) == sorted(members - {proc.pid})
        assert _procfs.cpu_nanoseconds(_procfs.group_members(proc.pid)) >= 0
        assert _procfs.rss_bytes(_procfs.group_members(proc.pid)) > 0
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
