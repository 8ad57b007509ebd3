"""A private containerd for tests: real CRI over a unix socket in a temp dir, no registry.

`running_containerd(directory)` writes a config (root, state and sockets under
``directory``; the CRI plugin with ``restrict_oom_score_adj`` because this machine lacks
CAP_SYS_RESOURCE; a busybox "pause" image built locally as the sandbox image; no CNI, so
pods must use host networking), starts containerd, waits until it answers, imports the
busybox and pause images built by `arktos_lite.runtime._oci` into the ``k8s.io``
namespace (where the CRI plugin looks), and yields a `Containerd`.

Teardown leaves nothing behind, even when a test failed half way: every task is killed
and deleted through ``ctr`` (which unmounts rootfs and removes cgroups), containerd gets
SIGTERM (SIGKILL after 10 s), any shim it started is killed together with its
descendants, and whatever is still mounted under ``directory`` is unmounted.

`require_containerd()` skips a test when the machine cannot run containerd (not root, a
binary missing), except under ``CI`` where it fails: CI installs everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from arktos_lite.runtime import _oci

NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin uses
BUSYBOX_IMAGE = _oci.BUSYBOX_IMAGE
PAUSE_IMAGE = _oci.PAUSE_IMAGE
BUSYBOX = Path("/bin/busybox")
TOOLS = ("containerd", "ctr", "runc", "containerd-shim-runc-v2")

# Plugins this machine cannot use or the tests do not need: fewer plugins, faster start,
# fewer warnings in the log.
_DISABLED_PLUGINS = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Containerd:
    """A running private containerd."""

    directory: Path
    socket: Path
    pid: int
    log: Path

    @property
    def endpoint(self) -> str:
        """The CRI endpoint as the agent's ``--runtime-endpoint`` spells it."""
        return f"unix://{self.socket}"

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _ctr(self.socket, *args, check=check)

    def shims(self) -> list[int]:
        return _shims(self.socket)

    def workload_pids(self) -> list[int]:
        """Every live process in a container of this containerd (the shims' descendants)."""
        return sorted(_descendants(self.shims()))

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def missing_requirement() -> str | None:
    """Why containerd cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "containerd tests need root"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed on this machine"
    if not BUSYBOX.is_file():
        return f"{BUSYBOX} is missing (install busybox-static)"
    return None


def require_containerd() -> None:
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must install containerd, runc and busybox-static)")
    pytest.skip(reason)


def write_config(directory: Path, *, socket: Path) -> Path:
    config = directory / "config.toml"
    disabled = ", ".join(f'"{name}"' for name in _DISABLED_PLUGINS)
    config.write_text(
        f"""\
version = 2
root = "{directory / "root"}"
state = "{directory / "state"}"
disabled_plugins = [{disabled}]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  # Without CAP_SYS_RESOURCE runc may not set an oom_score_adj below containerd's own:
  # this clamps it instead of failing every container.
  restrict_oom_score_adj = true
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # An empty conf dir: NetworkReady is false, and pods with host networking never call CNI.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{directory / "cni-bin"}"
    conf_dir = "{directory / "cni-conf"}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{_snapshotter(directory)}"
  # runc's state too, instead of /run/containerd/runc shared with the machine's containerd.
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "{directory / "runc"}"
"""
    )
    return config


@contextlib.contextmanager
def running_containerd(directory: Path, *, timeout: float = 15.0) -> Iterator[Containerd]:
    """Start containerd in ``directory`` with busybox and pause imported; stop it after."""
    directory.mkdir(parents=True, exist_ok=True)
    # A unix socket path must fit in 108 bytes; shim and ttrpc sockets add to it.
    socket = directory / "containerd.sock"
    if len(str(socket)) > 90:
        raise ValueError(f"{directory} is too long a path for containerd's sockets")
    config = write_config(directory, socket=socket)
    log = directory / "containerd.log"
    with log.open("w") as log_file:
        # Its own session: a Ctrl-C meant for pytest must not kill it before the teardown.
        process = subprocess.Popen(
            ["containerd", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = Containerd(directory=directory, socket=socket, pid=process.pid, log=log)
    try:
        _wait_ready(daemon, process, timeout=timeout)
        images = directory / "images"
        images.mkdir(exist_ok=True)
        for archive in (
            _oci.build_busybox_image(images, busybox=BUSYBOX),
            _oci.build_pause_image(images, busybox=BUSYBOX),
        ):
            daemon.ctr("images", "import", str(archive))
        yield daemon
    finally:
        _stop(daemon, process)


def _snapshotter(directory: Path) -> str:
    # overlayfs cannot stack on overlayfs (containers in containers); native always works.
    has_overlay = "overlay" in Path("/proc/filesystems").read_text()
    fs_type = subprocess.run(
        ["stat", "-f", "-c", "%T", str(directory)], capture_output=True, text=True, check=False
    ).stdout.strip()
    return "overlayfs" if has_overlay and fs_type != "overlayfs" else "native"


def _wait_ready(daemon: Containerd, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"containerd exited with {process.returncode}:\n{daemon.log_tail()}")
        if daemon.socket.exists() and daemon.ctr("version", check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"containerd not ready after {timeout} s:\n{daemon.log_tail()}")


def _stop(daemon: Containerd, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        _delete_everything(daemon)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # Shims outlive containerd by design (that is how it restarts without killing
    # containers); ours, and the containers under them, must not outlive the test.
    shims = _shims(daemon.socket)
    for pid in sorted(_descendants(shims)) + shims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _unmount_under(daemon.directory)


def _delete_everything(daemon: Containerd) -> None:
    """Kill and delete every task and container, as RemovePodSandbox would have."""
    for task in daemon.ctr("tasks", "ls", "-q", check=False).stdout.split():
        daemon.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False)
    # A task is deleted once it has exited; the CRI plugin deletes some by itself (a
    # sandbox's containers go with it), so ask again until none is left.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        tasks = daemon.ctr("tasks", "ls", "-q", check=False).stdout.split()
        if not tasks:
            break
        for task in tasks:
            daemon.ctr("tasks", "delete", task, check=False)
        time.sleep(0.05)
    containers = daemon.ctr("containers", "ls", "-q", check=False).stdout.split()
    if containers:
        daemon.ctr("containers", "delete", *containers, check=False)


def _ctr(socket: Path, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["ctr", "--address", str(socket), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"ctr {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def _shims(socket: Path) -> list[int]:
    """The shims serving this containerd: they carry its address on their command line."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].endswith(b"containerd-shim-runc-v2")
            and b"-address" in argv
            and str(socket).encode() in argv
        ):
            pids.append(int(proc.name))
    return pids


def _descendants(roots: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after it do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(proc.name))
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _unmount_under(directory: Path) -> None:
    prefix = str(directory.resolve()) + "/"
    mount_points = [
        line.split()[4].replace("\\040", " ")
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ]
    # Deepest first, so a mount inside another one goes before it.
    for mount_point in sorted((m for m in mount_points if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True, check=False)
