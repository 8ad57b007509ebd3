"""Containers from stored images, run by `runc`: the OCI bundle, its rootfs, and runc calls.

A container whose image is in the store (see `_store`) runs as an OCI bundle under its
container directory: ``config.json`` and ``rootfs/``, a writable view of the image's
rootfs (an overlay mount, lowerdir = the image's rootfs, upper and work dirs next to it;
a ``cp -a`` copy when overlayfs cannot be mounted). The supervisor starts
``runc --root <root>/runc run --bundle <dir> <id>`` in the foreground under its usual
shell wrapper: runc forwards SIGTERM/SIGINT to the container, exits with its status and
removes its own state and cgroup when the container ends.

Cgroups: ``linux.cgroupsPath`` is relative (``<name>/<id>/runc``), so runc puts the
container under its own cgroup in each hierarchy, i.e. inside the per-container cgroups
`_cgroups` made (memory, cpu, cpuacct) for the same id. The limits live on those outer
cgroups, not in ``config.json``: runc deletes its own cgroup when the container ends, and
the outer memory cgroup must outlive it for the OOM-kill counter (``OOMKilled``) to be
read; usage and CPU time are hierarchical, so stats read the outer cgroups as before.
`remove_cgroups` removes the ``<name>/<id>`` directories runc made in the other
hierarchies.

The container gets the PID, IPC, UTS and mount namespaces (the network one only with pod
networking, the sandbox's, see `runtime.POD_NETNS`; otherwise pods
share the node's network), containerd's default capabilities, ``RLIMIT_NOFILE``
1024/1024, and runc's default mounts, masked and read-only paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.process._launch import BindMount
from arktos_lite.runtime.process._store import ImageConfig

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_TIMEOUT = 30.0
# containerd's (and Docker's) default set: what Kubernetes workloads expect to have.
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# runc spec's defaults.
_MASKED = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)
_READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
)
# Host files every container sees (the pod shares the node's network and DNS).
ETC_FILES = ("/etc/resolv.conf", "/etc/hosts")


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What runs in the container: argv, environment, working directory and user."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    uid: int = 0
    gid: int = 0
    note: str = ""


def process_for(
    image: ImageConfig,
    *,
    command: Sequence[str],
    args: Sequence[str],
    envs: Mapping[str, str],
    working_dir: str,
) -> ProcessSpec:
    """Kubernetes semantics: `command` replaces Entrypoint, `args` replace Cmd.

    A command without args drops the image's Cmd too (as kubelet does). The environment
    is the image's Env overridden by `envs`; InvalidArgument when nothing would run.
    """
    argv = [*command, *args] if command else [*image.entrypoint, *(args or image.cmd)]
    if not argv:
        raise errors.InvalidArgument(
            "the container has no command or args and its image has no Entrypoint or Cmd"
        )
    env: dict[str, str] = {}
    for item in image.env:
        key, _, value = item.partition("=")
        if key:
            env[key] = value
    env.update(envs)
    env.setdefault("PATH", DEFAULT_PATH)
    uid, gid, note = _user(image.user)
    return ProcessSpec(
        args=argv, env=env, cwd=working_dir or image.working_dir or "/", uid=uid, gid=gid, note=note
    )


def _user(user: str) -> tuple[int, int, str]:
    if not user:
        return 0, 0, ""
    uid, _, gid = user.partition(":")
    try:
        return int(uid), int(gid or "0"), ""
    except ValueError:
        return 0, 0, f"image user {user!r} is not numeric: the container runs as root"


def bundle_config(
    process: ProcessSpec,
    *,
    hostname: str,
    mounts: Sequence[BindMount],
    etc_files: Mapping[str, str],
    cgroups_path: str,
    netns: str = "",
) -> dict[str, Any]:
    """The OCI runtime spec (config.json) of one container (in `netns`, a path, if given)."""
    bind: list[dict[str, Any]] = []
    taken = {m.container_path.rstrip("/") or "/" for m in mounts}
    for destination, source in etc_files.items():
        if destination not in taken:
            bind.append(_bind(source, destination, readonly=False))
    bind += [_bind(m.host_path, m.container_path, readonly=m.readonly) for m in mounts]
    caps = list(CAPABILITIES)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": process.uid, "gid": process.gid},
            "args": list(process.args),
            "env": [f"{k}={v}" for k, v in process.env.items()],
            "cwd": process.cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                # Root keeps its capabilities across exec as with Docker; others do not.
                "inheritable": caps if process.uid == 0 else [],
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [dict(m) for m in _MOUNTS] + bind,
        "linux": {
            "cgroupsPath": cgroups_path,
            # Limits are on the enclosing per-container cgroups (see the module docstring).
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
            + ([{"type": "network", "path": netns}] if netns else []),
            "maskedPaths": list(_MASKED),
            "readonlyPaths": list(_READONLY),
        },
    }


def _bind(source: str, destination: str, *, readonly: bool) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "bind",
        "source": source,
        "options": ["rbind", "rprivate", "ro" if readonly else "rw"],
    }


class Runc:
    """One runc binary with one state root."""

    def __init__(self, runc: str, *, root: Path, mount: str, umount: str) -> None:
        self.runc = runc
        self.root = root
        self.mount = mount
        self.umount = umount

    def base(self) -> list[str]:
        return [self.runc, "--root", str(self.root)]

    def run_argv(self, container_id: str, bundle: Path) -> list[str]:
        return [*self.base(), "run", "--bundle", str(bundle), container_id]

    def exec_argv(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        pid_file: Path | None = None,
    ) -> list[str]:
        options = ["--tty"] if tty else []
        if pid_file is not None:
            options += ["--pid-file", str(pid_file)]
        return [*self.base(), "exec", *options, container_id, *cmd]

    def _call(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.base(), *args],
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def kill(self, container_id: str, sig: signal.Signals) -> None:
        """Signal the container's init (nothing when it is gone already)."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            done = self._call("kill", container_id, sig.name.removeprefix("SIG"))
            if done.returncode != 0:
                log.debug("runc kill %s %s: %s", container_id, sig.name, done.stderr.strip())

    def wait_started(self, container_id: str, *, timeout: float) -> bool:
        """Whether runc runs the container, waiting a moment for `runc run` to start it."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired, ValueError):
                done = self._call("state", container_id)
                if done.returncode == 0 and json.loads(done.stdout).get("status") == "running":
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def delete(self, container_id: str) -> None:
        """Forget the container (killing what is left of it); idempotent."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            done = self._call("delete", "--force", container_id)
            if done.returncode != 0 and b"does not exist" not in done.stderr:
                log.warning("runc delete %s: %s", container_id, done.stderr.decode().strip())

    # ------------------------------------------------------------------ rootfs

    @staticmethod
    def write_config(bundle: Path, config: Mapping[str, Any]) -> None:
        tmp = bundle / "config.json.tmp"
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, bundle / "config.json")

    def prepare_rootfs(self, bundle: Path, image_rootfs: Path) -> str:
        """A writable rootfs for the bundle (idempotent); returns "overlay" or "copy"."""
        rootfs = bundle / "rootfs"
        rootfs.mkdir(exist_ok=True)
        if os.path.ismount(rootfs):
            return "overlay"
        mode = self._mount_overlay(bundle, image_rootfs)
        if mode == "copy" and not (bundle / "rootfs.copied").exists():
            done = subprocess.run(
                ["cp", "-a", f"{image_rootfs}/.", str(rootfs)],
                capture_output=True,
                check=False,
            )
            if done.returncode != 0:
                raise errors.Internal(
                    f"cannot copy the image rootfs: {done.stderr.decode(errors='replace')}"
                )
            (bundle / "rootfs.copied").touch()
        return mode

    def _mount_overlay(self, bundle: Path, lower: Path) -> str:
        upper, work = bundle / "upper", bundle / "work"
        paths = [str(p) for p in (lower, upper, work)]
        if any(c in p for p in paths for c in ",:\\"):
            return "copy"  # overlayfs options cannot carry these characters unescaped
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        try:
            done = subprocess.run(
                [self.mount, "-t", "overlay", "overlay", "-o", options, str(bundle / "rootfs")],
                capture_output=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            log.info("overlayfs unavailable (%s): copying image rootfs instead", e)
            return "copy"
        if done.returncode != 0:
            log.info(
                "overlayfs unavailable (%s): copying image rootfs instead",
                done.stderr.decode(errors="replace").strip(),
            )
            return "copy"
        return "overlay"

    def unmount(self, bundle: Path) -> None:
        rootfs = bundle / "rootfs"
        if not os.path.ismount(rootfs):
            return
        done = subprocess.run(
            [self.umount, str(rootfs)], capture_output=True, timeout=_TIMEOUT, check=False
        )
        if done.returncode != 0:
            # Busy (a process still holds it): detach so the directory can go.
            subprocess.run(
                [self.umount, "-l", str(rootfs)], capture_output=True, timeout=_TIMEOUT, check=False
            )


# ---------------------------------------------------------------------------- cgroups


class OomWatch:
    """An OOM notification (cgroup v1 eventfd) on a container's memory cgroup.

    The kernel counts an OOM kill in the memory cgroup of the victim (runc's own cgroup,
    which runc removes when the container ends), but notifies the cgroup whose limit was
    hit (the enclosing per-container one) and keeps the event until it is read.
    """

    def __init__(self, eventfd: int, control: int) -> None:
        self._eventfd = eventfd
        self._control = control
        self._fired = False

    @classmethod
    def open(cls, memory_dir: Path) -> OomWatch | None:
        try:
            control = os.open(memory_dir / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            (memory_dir / "cgroup.event_control").write_text(f"{eventfd} {control}")
        except OSError as e:
            log.debug("no OOM notification for %s: %s", memory_dir, e)
            os.close(eventfd)
            os.close(control)
            return None
        return cls(eventfd, control)

    def fired(self) -> bool:
        if not self._fired and self._eventfd >= 0:
            with contextlib.suppress(BlockingIOError):
                self._fired = os.eventfd_read(self._eventfd) > 0
        return self._fired

    def close(self) -> None:
        for fd in (self._eventfd, self._control):
            if fd >= 0:
                os.close(fd)
        self._eventfd = self._control = -1


def cgroups_path(name: str, container_id: str) -> str:
    """config.json's cgroupsPath: relative, so under the runtime's cgroup in each hierarchy."""
    return f"{name}/{container_id}/runc"


def _hierarchies() -> list[Path]:
    """This process's cgroup directory in every mounted hierarchy (v1 and v2)."""
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    mounts: list[tuple[str, set[str], str]] = []  # (fstype, options, mount point)
    for line in mountinfo:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rest = left.split(), right.split()
        if len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            mounts.append((rest[0], set(rest[2].split(",")), fields[4]))
    out = []
    for line in own:
        _, controllers, path = line.split(":", 2)
        wanted = set(controllers.split(",")) if controllers else set()
        for fstype, options, point in mounts:
            if (fstype == "cgroup2" and not wanted) or (fstype == "cgroup" and wanted & options):
                out.append(Path(point) / path.lstrip("/"))
                break
    return out


def remove_cgroups(name: str, container_id: str) -> None:
    """Remove `<name>/<id>` (and below) under this process's cgroup in every hierarchy."""
    for base in _hierarchies():
        top = base / name / container_id
        if not top.is_dir():
            continue
        for d in sorted(
            (Path(dirpath) for dirpath, _, _ in os.walk(top)), key=lambda p: -len(p.parts)
        ):
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.debug("cannot remove cgroup %s: %s", d, e)
