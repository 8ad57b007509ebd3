"""Per-container cgroup v1 limits and accounting (memory, cpu, cpuacct), when writable.

`probe()` finds which v1 hierarchies this process may create children in; each container
then gets `<own cgroup>/<name>/<container id>` in each of them. Nothing here raises for a
missing or read-only hierarchy: the container just runs without that controller, and the
reason is kept for the runtime's Status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "cpuacct")
# The file whose presence says a mount is the v1 hierarchy of that controller.
_MARKER = {
    "memory": "memory.limit_in_bytes",
    "cpu": "cpu.cfs_quota_us",
    "cpuacct": "cpuacct.usage",
}


@dataclasses.dataclass(frozen=True, slots=True)
class CgroupSupport:
    """Where per-container cgroups go (controller -> parent dir), and why some are missing."""

    parents: dict[str, Path]
    problems: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return "memory" in self.parents or "cpu" in self.parents

    def describe(self) -> str:
        if not self.parents:
            return "cgroup-v1 unavailable (" + "; ".join(self.problems) + ")"
        return "cgroup-v1(" + ",".join(sorted(self.parents)) + ")"

    def for_container(self, container_id: str) -> ContainerCgroup:
        return ContainerCgroup({c: p / container_id for c, p in self.parents.items()})


def _own_path(controller: str) -> str:
    """This process's cgroup path in the v1 hierarchy holding `controller`."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"


def probe(name: str) -> CgroupSupport:
    """Which v1 controllers accept a child cgroup here (creates `<own>/<name>` in each)."""
    parents: dict[str, Path] = {}
    problems: list[str] = []
    for controller in CONTROLLERS:
        mount = CGROUP_ROOT / controller
        if not (mount / _MARKER[controller]).exists():
            problems.append(f"no v1 {controller} hierarchy at {mount}")
            continue
        parent = mount / _own_path(controller).lstrip("/") / name
        test = parent / f"probe-{os.getpid()}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            test.mkdir(exist_ok=True)
            test.rmdir()
        except OSError as e:
            problems.append(f"{controller}: cannot create cgroups under {parent}: {e.strerror}")
            continue
        parents[controller] = parent
    return CgroupSupport(parents, tuple(problems))


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerCgroup:
    """One container's cgroup directories, keyed by controller."""

    dirs: dict[str, Path]

    def create(
        self, *, memory_limit: int = 0, cpu_quota: int = 0, cpu_period: int = 0
    ) -> list[str]:
        """Make the directories and apply limits; returns what could not be applied."""
        problems = []
        for controller, d in self.dirs.items():
            try:
                d.mkdir(exist_ok=True)
            except OSError as e:
                problems.append(f"cgroup {controller}: {e.strerror}")
        problems += self.update(
            memory_limit=memory_limit, cpu_quota=cpu_quota, cpu_period=cpu_period
        )
        return problems

    def update(
        self, *, memory_limit: int = 0, cpu_quota: int = 0, cpu_period: int = 0
    ) -> list[str]:
        problems = []
        writes: list[tuple[str, str, int]] = []
        if memory_limit > 0:
            writes.append(("memory", "memory.limit_in_bytes", memory_limit))
        if cpu_period > 0:
            writes.append(("cpu", "cpu.cfs_period_us", cpu_period))
        if cpu_quota != 0:
            writes.append(("cpu", "cpu.cfs_quota_us", cpu_quota))
        for controller, filename, value in writes:
            d = self.dirs.get(controller)
            if d is None:
                problems.append(f"{filename} not applied: no writable {controller} cgroup")
                continue
            try:
                (d / filename).write_text(str(value))
            except OSError as e:
                problems.append(f"{filename}={value} not applied: {e.strerror}")
        return problems

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values() if d.is_dir()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in f.read_text().split())
        return found

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        """True when the kernel's OOM killer acted inside this container's memory cgroup."""
        d = self.dirs.get("memory")
        if d is None:
            return False
        try:
            text = (d / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return False

    def cpu_nanoseconds(self) -> int | None:
        d = self.dirs.get("cpuacct")
        return None if d is None else _read_int(d / "cpuacct.usage")

    def memory(self) -> tuple[int, int, int] | None:
        """(usage, working set, rss) in bytes, as cadvisor computes them from memory.stat."""
        d = self.dirs.get("memory")
        if d is None:
            return None
        usage = _read_int(d / "memory.usage_in_bytes")
        if usage is None:
            return None
        stats: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (d / "memory.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                with contextlib.suppress(ValueError):
                    stats[key] = int(value)
        inactive = stats.get("total_inactive_file", 0)
        working_set = max(0, usage - inactive)
        return usage, working_set, stats.get("total_rss", 0)

    def remove(self) -> None:
        """Kill what is left and remove the directories (retrying while processes exit)."""
        for attempt in range(20):
            self.kill_all()
            busy = False
            for d in self.dirs.values():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        log.debug("cannot remove cgroup %s: %s", d, e)
                        continue
                    busy = True
            if not busy:
                return
            # A just-killed process leaves its cgroup a moment after the signal.
            time.sleep(0.01 * (attempt + 1))
        log.warning("cgroups of %s still busy", list(self.dirs.values()))
