"""The process runtime's state: sandboxes and containers as supervised host processes.

Guarantees:

* Thread-safe: gRPC handlers call it from worker threads; one lock guards the records and
  nothing blocks for long while holding it.
* Persistent: every change is written under `root_dir` before the call returns, and a new
  `Supervisor` over the same directory finds every sandbox and container. A container
  still running is adopted when its pid is alive *and* has the recorded start time (a
  reused pid is not mistaken for it); one that ended meanwhile gets the exit code its
  wrapper wrote (see `_launch`).
* Closing the supervisor stops watching but never kills: containers outlive the runtime.
* A container is its own session and process group; stopping it signals the whole group
  (SIGTERM, then SIGKILL after the timeout) and, when its main process ends, whatever is
  left of the group (and of its cgroup) is killed, so no orphans remain.
* When isolated (root and `unshare`), each container gets its own mount, UTS, IPC and PID
  namespaces (hostname = the sandbox's; containers of one pod do not share IPC or PID
  namespaces, as with `shareProcessNamespace: false`), its bind mounts, and cgroup v1
  memory/cpu limits when the hierarchies are writable; otherwise it runs unisolated and
  says so (Status info "isolation", and the message of containers asking for mounts).
  There is no root filesystem of its own: a container sees the host's files, and a
  missing mount point is created on the host (an empty directory or file) to mount on.
* Except for containers of stored images (`arktos image import`, see `_store`): when
  isolated and `runc` is on PATH, such a container runs with runc in the image's rootfs
  (see `_runc`), under the same wrapper, so logs, exit codes, stop and adoption work the
  same way; its record says so (`runc`). An image reference that is not in the store
  keeps naming nothing: the container runs its command on the host, as above.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from arktos_lite.runtime import _errors as errors, _protocol as protocol, _sandboxes as sandboxes_
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import _cgroups, _launch, _procfs, _runc, _store
from arktos_lite.runtime.process._config import ProcessRuntimeConfig
from arktos_lite.runtime.process._images import NOTE, ImageStore, program_for
from arktos_lite.runtime.process._logs import CriLogWriter, LogPump, rotated_paths
from arktos_lite.runtime.process._records import (
    ContainerRecord,
    State,
    read_json,
    remove,
    write_json,
)
from arktos_lite.runtime.process._store import LocalImages, StoredImage, repo_digests

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
MAX_TERMINATION_MESSAGE = 4096
# How long StopContainer waits for the kernel to deliver SIGKILL and the monitor to notice.
_KILL_WAIT = 5.0
# How long `runc run` gets to notice its SIGKILLed container before it is killed too.
_RUNC_KILL_WAIT = 1.0
# How long StopContainer waits for a container started just now to run its workload.
_START_WAIT = 5.0
_START_POLL = 0.005
_POLL_MIN = 0.02
_POLL_MAX = 0.25
_DEFAULT_SIGNALS = tuple(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)


@dataclasses.dataclass(frozen=True, slots=True)
class ExecSpec:
    """How to start a process in a running container's context (exec, probes)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str


@dataclasses.dataclass(frozen=True, slots=True)
class IsolationSupport:
    """What this machine lets the runtime do, and the one-line summary Status reports."""

    namespaces: bool
    cgroups: _cgroups.CgroupSupport | None
    unshare: str
    nsenter: str
    mount: str
    description: str
    # The runc binary when containers of stored images run with it ("" otherwise).
    runc: str = ""


def detect_isolation(config: ProcessRuntimeConfig) -> IsolationSupport:
    """Decide namespaces and cgroups from the config and the machine (never raises)."""
    unshare = shutil.which("unshare") or ""
    nsenter = shutil.which("nsenter") or ""
    mount = shutil.which("mount") or ""

    def none(why: str) -> IsolationSupport:
        return IsolationSupport(False, None, unshare, nsenter, mount, f"none ({why})")

    if config.isolate is False:
        return none("disabled")
    if os.geteuid() != 0:
        return none("not root")
    missing = [
        n for n, p in (("unshare", unshare), ("nsenter", nsenter), ("mount", mount)) if not p
    ]
    if missing:
        return none(" and ".join(missing) + " not found")
    try:
        probe = subprocess.run(
            [unshare, "--fork", "--pid", "--mount-proc", "--mount", "--uts", "--ipc", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return none(f"unshare failed: {e}")
    if probe.returncode != 0:
        return none("unshare failed: " + probe.stderr.decode(errors="replace").strip())
    cgroups = _cgroups.probe(config.cgroup_name)
    if cgroups.usable:
        description = "namespaces," + (
            "cgroup-v1" if len(cgroups.parents) == 3 else cgroups.describe()
        )
    else:
        description = f"namespaces ({cgroups.describe()})"
    runc = _detect_runc(config)
    if runc:
        description += ",runc"
    return IsolationSupport(
        True, cgroups if cgroups.usable else None, unshare, nsenter, mount, description, runc
    )


def _detect_runc(config: ProcessRuntimeConfig) -> str:
    if config.runc is False:
        return ""
    runc = shutil.which("runc") or ""
    if not runc or not shutil.which("umount"):
        return ""
    try:
        probe = subprocess.run([runc, "--version"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("runc unusable: %s", e)
        return ""
    return runc if probe.returncode == 0 else ""


def _now() -> int:
    # CRI timestamps are wall-clock nanoseconds since the epoch.
    return time.time_ns()


class _Monitor:
    """One thread per running container: converts its output to CRI logs, notices its end."""

    def __init__(
        self, supervisor: Supervisor, rec: ContainerRecord, *, pump: LogPump, writer: CriLogWriter
    ) -> None:
        self.supervisor = supervisor
        self.rec = rec
        self.pump = pump
        self.writer = writer
        self.exited = threading.Event()
        # Set once the main process is known dead (and reaped when it was ours): from
        # then on its pid may name another process, so nothing may signal it.
        self.dead = False
        # runc containers: the OOM notification, and whether runc was seen running it.
        self.oom_watch: _runc.OomWatch | None = None
        self.runc_started = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"container-{rec.id[:12]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop watching without touching the process (the runtime is going away)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def wake(self) -> None:
        """Poll now and often: the container was just signalled."""
        self._wake.set()

    def _run(self) -> None:
        interval = _POLL_MIN
        try:
            while not self._stop.is_set():
                moved = self.pump.pump()
                status = self.supervisor._check_exit(self)
                if status is not None:
                    self.supervisor._finish(self, status)
                    return
                interval = _POLL_MIN if moved else min(interval * 2, _POLL_MAX)
                if self._wake.wait(interval):
                    self._wake.clear()
                    interval = _POLL_MIN
            self.pump.pump()
        except Exception:
            log.exception("monitor of container %s failed", self.rec.id)
        finally:
            if not self.exited.is_set():
                self.writer.close()


@dataclasses.dataclass(frozen=True, slots=True)
class _ExitStatus:
    """What is known about how a container's main process ended."""

    wait_status: int | None  # from waitpid when the process was ours to reap


class Supervisor:
    """Sandboxes and containers of one process runtime (see the module docstring)."""

    def __init__(self, config: ProcessRuntimeConfig) -> None:
        self.config = config
        self.root = config.root_dir
        self.sandboxes = sandboxes_.Sandboxes(self.root / "sandboxes")
        self._container_dir = self.root / "containers"
        self._lock = threading.RLock()
        self._containers: dict[str, ContainerRecord] = {}
        self._monitors: dict[str, _Monitor] = {}
        self.isolation = IsolationSupport(False, None, "", "", "", "none (not started)")
        self.images = ImageStore(self.root / "images.json")
        self.local_images = LocalImages(self.root)
        self._runc: _runc.Runc | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Detect isolation, load the records and adopt running containers (blocking)."""
        self.sandboxes.load()
        self._container_dir.mkdir(parents=True, exist_ok=True)
        self.isolation = detect_isolation(self.config)
        log.info("process runtime isolation: %s", self.isolation.description)
        if self.isolation.runc:
            self._runc = _runc.Runc(
                self.isolation.runc,
                root=self.root / "runc",
                mount=self.isolation.mount,
                umount=shutil.which("umount") or "umount",
            )
        with self._lock:
            for path in sorted(self._container_dir.glob("*/container.json")):
                data = read_json(path)
                if data is None:
                    continue
                rec = ContainerRecord.from_json(data)
                self._containers[rec.id] = rec
                if rec.state is State.RUNNING:
                    self._start_monitor(rec)
            adopted = sum(1 for r in self._containers.values() if r.state is State.RUNNING)
        log.info(
            "process runtime found %d sandboxes, %d containers (%d running)",
            len(self.sandboxes),
            len(self._containers),
            adopted,
        )

    def close(self) -> None:
        """Stop watching every container; the processes keep running (blocking)."""
        with self._lock:
            monitors = list(self._monitors.values())
            self._monitors.clear()
        for m in monitors:
            m.close()

    # ------------------------------------------------------------------ records

    def _cdir(self, container_id: str) -> Path:
        return self._container_dir / container_id

    def _save_container(self, rec: ContainerRecord) -> None:
        write_json(self._cdir(rec.id) / "container.json", rec.to_json())

    def _container(self, container_id: str) -> ContainerRecord:
        if not container_id:
            raise errors.InvalidArgument("a container id is required")
        rec = self._containers.get(container_id)
        if rec is None:
            raise errors.NotFound(f"container {container_id!r} not found")
        return rec

    # ------------------------------------------------------------------ sandboxes

    def run_pod_sandbox(self, config: cri.PodSandboxConfig, *, runtime_handler: str = "") -> str:
        return self.sandboxes.create(config, runtime_handler=runtime_handler).id

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        if self.sandboxes.find(sandbox_id) is None:
            return  # idempotent: nothing left to reclaim
        with self._lock:
            ids = [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]
        self._kill_many(ids)
        self.sandboxes.mark_stopped(sandbox_id)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.stop_pod_sandbox(sandbox_id)
        with self._lock:
            ids = [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]
        for cid in ids:
            self.remove_container(cid)
        self.sandboxes.forget(sandbox_id)

    def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        sb = self.sandboxes.find(sandbox_id)
        netns = _sandbox_netns(sb.config) if sb is not None else ""
        ips = [self.config.host_ip]
        if netns and sb is not None:
            ips = [ip for ip in sb.config.annotations.get(protocol.POD_IPS, "").split(",") if ip]
        return self.sandboxes.status(
            sandbox_id,
            network=cri.PodSandboxNetworkStatus(
                ip=ips[0] if ips else "",
                additional_ips=[cri.PodIP(ip=ip) for ip in ips[1:]],
            ),
            linux=cri.LinuxPodSandboxStatus(
                namespaces=cri.Namespace(
                    options=cri.NamespaceOption(
                        network=cri.POD if netns else cri.NODE,
                        pid=cri.CONTAINER,
                        ipc=cri.CONTAINER if self.isolation.namespaces else cri.NODE,
                    )
                )
            ),
        )

    def list_pod_sandbox(self, filter: cri.PodSandboxFilter | None = None) -> list[cri.PodSandbox]:
        return self.sandboxes.list(filter)

    # ------------------------------------------------------------------ containers

    def create_container(
        self,
        sandbox_id: str,
        config: cri.ContainerConfig,
        sandbox_config: cri.PodSandboxConfig | None = None,
    ) -> str:
        md = config.metadata
        if not md.name:
            raise errors.InvalidArgument("container metadata needs a name")
        stored = self.local_images.find(config.image.image)
        spec: _runc.ProcessSpec | None = None
        if stored is not None and self._runc is not None:
            spec = _runc.process_for(
                stored.config,
                command=config.command,
                args=config.args,
                envs={kv.key: kv.value for kv in config.envs},
                working_dir=config.working_dir,
            )
            argv, env = spec.args, spec.env
        else:
            env = {kv.key: kv.value for kv in config.envs}
            env.setdefault("PATH", DEFAULT_PATH)
            argv = program_for(
                command=config.command, args=config.args, image=config.image.image, path=env["PATH"]
            )
            program = argv[0]
            if "/" not in program and shutil.which(program, path=env["PATH"]) is None:
                raise errors.InvalidArgument(
                    f'executable {program!r} not found in $PATH "{env["PATH"]}"'
                )
        with self._lock:
            sb = self.sandboxes.ready(sandbox_id)
            sandboxes_.refuse_second_attempt(self._containers.values(), sandbox_id, md)
            cid = sandboxes_.new_id()
            cdir = self._cdir(cid)
            cdir.mkdir(parents=True)
            if sb.config.log_directory and config.log_path:
                log_path = Path(sb.config.log_directory) / config.log_path
            else:
                log_path = cdir / "container.log"
            # A runc container's working directory is in its rootfs; a host process
            # gets a fresh directory of its own unless the config names one.
            workdir = spec.cwd if spec is not None else config.working_dir or str(cdir / "work")
            rec = ContainerRecord(
                id=cid,
                sandbox_id=sandbox_id,
                config=config,
                created_at=_now(),
                log_path=str(log_path),
                argv=argv,
                env=env,
                workdir=workdir,
                hostname=sb.config.hostname or sb.config.metadata.name,
                netns=_sandbox_netns(sb.config),
            )
            if spec is not None and stored is not None:
                rec.runc = True
                rec.image_id = stored.id
                if spec.note:
                    rec.notes.append(spec.note)
                self._write_bundle(rec, spec)
            elif stored is not None:
                rec.notes.append(
                    f"image {stored.id} is stored but runs as a host process: runc needs root, "
                    f"namespaces and runc ({self.isolation.description})"
                )
            if config.mounts and not self.isolation.namespaces:
                rec.notes.append(
                    "volume mounts unavailable: the process runtime runs unisolated "
                    f"({self.isolation.description}); "
                    + ", ".join(
                        f"{m.container_path} not mounted"
                        for m in config.mounts
                        if m.host_path != m.container_path
                    )
                )
            if config.tty:
                rec.notes.append("tty is not supported by the process runtime")
            self._save_container(rec)
            self._containers[cid] = rec
        log.debug("container %s (%s) in sandbox %s: %s", cid, md.name, sandbox_id, argv)
        return cid

    def _write_bundle(self, rec: ContainerRecord, spec: _runc.ProcessSpec) -> None:
        """config.json of a runc container (lock held: small files only)."""
        cdir = self._cdir(rec.id)
        hostname_file = cdir / "hostname"
        hostname_file.write_text(rec.hostname + "\n")
        etc = {path: path for path in _runc.ETC_FILES if os.path.isfile(path)}
        etc["/etc/hostname"] = str(hostname_file)
        bundle = _runc.bundle_config(
            spec,
            hostname=rec.hostname,
            mounts=[
                _launch.BindMount(m.host_path, m.container_path, m.readonly)
                for m in rec.config.mounts
                if m.host_path and m.container_path
            ],
            etc_files=etc,
            cgroups_path=_runc.cgroups_path(self.config.cgroup_name, rec.id),
            netns=rec.netns,
        )
        _runc.Runc.write_config(cdir, bundle)

    def _check_created(self, container_id: str) -> ContainerRecord:
        rec = self._container(container_id)
        if rec.state is not State.CREATED:
            raise errors.FailedPrecondition(
                f"container {container_id} is {rec.state.value}, not created"
            )
        return rec

    def start_container(self, container_id: str) -> None:
        with self._lock:
            rec = self._check_created(container_id)
        if rec.runc:
            # Mounting (or copying) the rootfs may take a while: not under the lock.
            self._prepare_rootfs(rec)
        with self._lock:
            rec = self._check_created(container_id)
            self._spawn(rec)
            self._save_container(rec)
            self._start_monitor(rec)

    def _prepare_rootfs(self, rec: ContainerRecord) -> None:
        runc = self._runc
        # By id: an image removed while containers use it keeps its files.
        rootfs = self.local_images.rootfs_of(rec.image_id)
        if runc is None:
            raise errors.FailedPrecondition(f"container {rec.id} needs runc, which is unavailable")
        if rootfs is None:
            raise errors.FailedPrecondition(
                f"image {rec.config.image.image} ({rec.image_id}) is no longer in the store"
            )
        mode = runc.prepare_rootfs(self._cdir(rec.id), rootfs)
        with self._lock:
            rec.rootfs = mode
            self._save_container(rec)

    def _spawn(self, rec: ContainerRecord) -> None:
        """Start the container's process (holding the lock; spawning is quick)."""
        cdir = self._cdir(rec.id)
        config = rec.config
        cgroup_procs: list[Path] = []
        if self.isolation.cgroups is not None:
            cg = self.isolation.cgroups.for_container(rec.id)
            res = config.linux.resources
            rec.notes += cg.create(
                memory_limit=res.memory_limit_in_bytes,
                cpu_quota=res.cpu_quota,
                cpu_period=res.cpu_period,
            )
            rec.notes += _cpu_shares(cg, res.cpu_shares)
            rec.cgroup = True
            # runc puts a container in a cgroup below the ones of its own process.
            cgroup_procs = [] if rec.runc else cg.procs_files()
        elif config.linux.resources.memory_limit_in_bytes or config.linux.resources.cpu_quota:
            rec.notes.append(f"resource limits not applied: {self.isolation.description}")
        isolation = None
        spawn_env = rec.env
        if rec.runc:
            assert self._runc is not None
            argv = _launch.container_argv(
                self._runc.run_argv(rec.id, cdir),
                workdir=str(cdir),
                exit_file=cdir / "exit",
                env_names={"PATH"},
            )
            # runc itself runs with the host's PATH; the container's env is in config.json.
            spawn_env = {"PATH": DEFAULT_PATH}
            rec.isolated = True
        elif self.isolation.namespaces:
            isolation = _launch.Isolation(
                unshare=self.isolation.unshare,
                mount=self.isolation.mount,
                hostname=rec.hostname,
                mounts=tuple(
                    _launch.BindMount(m.host_path, m.container_path, m.readonly)
                    for m in config.mounts
                    if m.host_path and m.container_path
                ),
            )
            rec.isolated = True
        if not rec.runc:
            if not config.working_dir:
                Path(rec.workdir).mkdir(parents=True, exist_ok=True)
            argv = _launch.container_argv(
                rec.argv,
                workdir=rec.workdir,
                exit_file=cdir / "exit",
                cgroup_procs=cgroup_procs,
                isolation=isolation,
                env_names=rec.env.keys(),
                netns=(self.isolation.nsenter or "nsenter", rec.netns) if rec.netns else None,
            )
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        out = os.open(cdir / "stdout", flags, 0o640)
        err = os.open(cdir / "stderr", flags, 0o640)
        if config.stdin:
            fifo = cdir / "stdin"
            if not fifo.exists():
                os.mkfifo(fifo, 0o600)
            # Read-write, so opening does not wait for a writer and reads never see EOF.
            stdin_action = (os.POSIX_SPAWN_OPEN, 0, str(fifo), os.O_RDWR, 0)
        else:
            stdin_action = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        try:
            pid = os.posix_spawn(
                _launch.SHELL,
                argv,
                spawn_env,
                file_actions=[
                    stdin_action,
                    (os.POSIX_SPAWN_DUP2, out, 1),
                    (os.POSIX_SPAWN_DUP2, err, 2),
                ],
                setsid=True,
                # Python ignores SIGPIPE and a worker thread may block signals: a container
                # starts as from a fresh shell, every signal default and unblocked.
                setsigdef=_DEFAULT_SIGNALS,
                setsigmask=(),
            )
        except OSError as e:
            raise errors.Internal(f"cannot start container {rec.id}: {e}") from e
        finally:
            os.close(out)
            os.close(err)
        # The child cannot be reaped before the monitor runs, so its stat entry is there.
        rec.pid = pid
        rec.pid_start = _procfs.start_time(pid) or 0
        rec.state = State.RUNNING
        rec.started_at = _now()
        log.debug("container %s started as pid %d", rec.id, pid)

    def _start_monitor(self, rec: ContainerRecord) -> None:
        writer = CriLogWriter(
            Path(rec.log_path),
            max_bytes=self.config.log_max_bytes,
            max_files=self.config.log_max_files,
        )
        cdir = self._cdir(rec.id)
        pump = LogPump(raw_dir=cdir, writer=writer, state_path=cdir / "log-offsets.json")
        monitor = _Monitor(self, rec, pump=pump, writer=writer)
        cg = self._cgroup(rec)
        if rec.runc and cg is not None and "memory" in cg.dirs:
            monitor.oom_watch = _runc.OomWatch.open(cg.dirs["memory"])
        self._monitors[rec.id] = monitor
        monitor.start()

    def _cgroup(self, rec: ContainerRecord) -> _cgroups.ContainerCgroup | None:
        if not rec.cgroup or self.isolation.cgroups is None:
            return None
        return self.isolation.cgroups.for_container(rec.id)

    def _check_exit(self, monitor: _Monitor) -> _ExitStatus | None:
        """None while the container's main process runs; else how it ended (reaped)."""
        rec = monitor.rec
        st = _procfs.stat(rec.pid)
        if st is not None and st.start_time == rec.pid_start and not st.zombie:
            return None
        wait_status = None
        with self._lock:
            if st is None:
                # No process has the pid, so a group with that id can only be ours.
                self._killpg(rec.pid, signal.SIGKILL)
            elif st.start_time == rec.pid_start:
                # A zombie holds its pid (and group id) until reaped: safe to signal.
                self._killpg(rec.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    _, wait_status = os.waitpid(rec.pid, 0)
            monitor.dead = True
        cg = self._cgroup(rec)
        if cg is not None:
            cg.kill_all()
        return _ExitStatus(wait_status)

    @staticmethod
    def _killpg(pgid: int, sig: signal.Signals) -> None:
        if pgid <= 1:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _finish(self, monitor: _Monitor, status: _ExitStatus) -> None:
        """Record how a container ended (monitor thread)."""
        rec = monitor.rec
        cdir = self._cdir(rec.id)
        monitor.pump.finish()
        monitor.writer.close()
        exit_file = cdir / "exit"
        code: int | None = None
        finished = _now()
        with contextlib.suppress(OSError, ValueError):
            code = int(exit_file.read_text().strip())
            if status.wait_status is None:
                # Ended while no runtime watched: the file's time is when it ended.
                finished = exit_file.stat().st_mtime_ns
        message = ""
        if code is None:
            ws = status.wait_status
            if ws is not None and os.WIFEXITED(ws):
                code = os.WEXITSTATUS(ws)
            elif ws is not None and os.WIFSIGNALED(ws):
                code = 128 + os.WTERMSIG(ws)
            elif rec.killed:
                code = 128 + signal.SIGKILL
            else:
                code = 255
                message = "the container ended while no runtime watched it; its status is lost"
        cg = self._cgroup(rec)
        oom = cg is not None and cg.oom_killed()
        if monitor.oom_watch is not None:
            oom = oom or monitor.oom_watch.fired()
            monitor.oom_watch.close()
        termination = self._termination_message(rec)
        if rec.runc:
            self._runc_teardown(rec)
        if cg is not None:
            cg.remove()
        with self._lock:
            rec.state = State.EXITED
            rec.exit_code = code
            rec.finished_at = max(finished, rec.started_at)
            rec.reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
            rec.message = termination or message
            if rec.id in self._containers:
                self._save_container(rec)
            if self._monitors.get(rec.id) is monitor:
                del self._monitors[rec.id]
        monitor.exited.set()
        log.debug("container %s exited with %d (%s)", rec.id, code, rec.reason)

    def _runc_teardown(self, rec: ContainerRecord) -> None:
        """Whatever a runc container leaves: its runc state, rootfs mount, cgroups."""
        runc = self._runc or _fallback_runc(self.root)
        if runc is not None:
            runc.delete(rec.id)
            runc.unmount(self._cdir(rec.id))
        _runc.remove_cgroups(self.config.cgroup_name, rec.id)

    def _termination_message(self, rec: ContainerRecord) -> str:
        path = rec.config.annotations.get(TERMINATION_MESSAGE_PATH, "")
        if not path:
            return ""
        host = path
        if rec.runc:
            # Inside the image's rootfs unless under a mount, never outside it.
            host = str(_store.resolve_in(self._cdir(rec.id) / "rootfs", path))
        if rec.isolated:
            # The container saw its bind mounts; find the host file behind the path.
            for m in sorted(rec.config.mounts, key=lambda m: -len(m.container_path)):
                cp = m.container_path.rstrip("/")
                if path == cp or path.startswith(cp + "/"):
                    host = m.host_path + path[len(cp) :]
                    break
        try:
            with open(host, "rb") as f:
                return f.read(MAX_TERMINATION_MESSAGE).decode(errors="replace")
        except OSError:
            return ""

    def stop_container(self, container_id: str, *, timeout: float) -> None:
        with self._lock:
            rec = self._container(container_id)
            monitor = self._monitors.get(container_id)
            if rec.state is not State.RUNNING or monitor is None:
                return
        if timeout > 0:
            waited = self._wait_started(rec, monitor, within=min(timeout, _START_WAIT))
            with self._lock:
                self._signal(monitor, signal.SIGTERM)
            self._runc_kill(rec, signal.SIGTERM)
            if monitor.exited.wait(max(0.0, timeout - waited)):
                return
        if not self._kill_many([container_id]):
            log.warning("container %s did not end %.0fs after SIGKILL", container_id, _KILL_WAIT)

    def _wait_started(self, rec: ContainerRecord, monitor: _Monitor, *, within: float) -> float:
        """Wait (at most `within` seconds, which it returns having spent) until a container
        that has just started runs its workload, or has ended: a SIGTERM before that is
        lost to the wrapper's trap (see `_launch`)."""
        began = time.monotonic()
        if time.time_ns() - rec.started_at > _START_WAIT * 1e9:
            return 0.0  # long running (or started by a runtime that wrote no marker)
        marker = self._cdir(rec.id) / _launch.STARTED
        while not marker.exists() and time.monotonic() - began < within:
            if monitor.exited.wait(_START_POLL):
                break
        return time.monotonic() - began

    def _signal(self, monitor: _Monitor, sig: signal.Signals) -> None:
        """Signal the container's process group (and cgroup for SIGKILL); lock held."""
        if monitor.dead:
            return
        self._killpg(monitor.rec.pid, sig)
        monitor.wake()
        if sig == signal.SIGKILL:
            cg = self._cgroup(monitor.rec)
            if cg is not None:
                cg.kill_all()

    def _runc_kill(self, rec: ContainerRecord, sig: signal.Signals) -> None:
        """Signal a runc container's init (not holding the lock: runc takes a moment)."""
        if rec.runc and self._runc is not None and rec.state is State.RUNNING:
            self._runc.kill(rec.id, sig)

    def _kill_many(self, container_ids: Iterable[str]) -> bool:
        """SIGKILL running containers and wait for them; False if one outlived the wait."""
        with self._lock:
            targets = []
            for cid in container_ids:
                rec = self._containers.get(cid)
                monitor = self._monitors.get(cid)
                if rec is None or monitor is None or rec.state is not State.RUNNING:
                    continue
                rec.killed = True
                self._save_container(rec)
                targets.append(monitor)
        # runc containers first through runc: `runc run` then reaps its container, cleans
        # up after it and exits with its status, as when the container ends by itself.
        by_runc = [m for m in targets if m.rec.runc]
        for m in by_runc:
            self._runc_kill(m.rec, signal.SIGKILL)
        deadline = time.monotonic() + _RUNC_KILL_WAIT
        for m in by_runc:
            m.exited.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for m in targets:
                if not m.exited.is_set():
                    self._signal(m, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_WAIT
        return all(m.exited.wait(max(0.0, deadline - time.monotonic())) for m in targets)

    def remove_container(self, container_id: str) -> None:
        with self._lock:
            rec = self._containers.get(container_id)
            if rec is None:
                return  # idempotent
        self._kill_many([container_id])
        with self._lock:
            self._containers.pop(container_id, None)
            monitor = self._monitors.pop(container_id, None)
        if monitor is not None:
            monitor.close()
        for p in rotated_paths(Path(rec.log_path), self.config.log_max_files):
            remove(p)
        if rec.runc:
            # Never delete a directory that still has the rootfs mounted in it.
            self._runc_teardown(rec)
        cg = self._cgroup(rec)
        if cg is not None:
            cg.remove()
        shutil.rmtree(self._cdir(container_id), ignore_errors=True)

    def _container_message(self, rec: ContainerRecord) -> str:
        if rec.message:
            return rec.message
        return "; ".join(rec.notes)

    def container_status(self, container_id: str) -> cri.ContainerStatus:
        with self._lock:
            rec = self._container(container_id)
            return cri.ContainerStatus(
                id=rec.id,
                metadata=rec.config.metadata,
                state=_CRI_STATE[rec.state],
                created_at=rec.created_at,
                started_at=rec.started_at,
                finished_at=rec.finished_at,
                exit_code=rec.exit_code,
                image=rec.config.image,
                image_ref=rec.image_id or rec.config.image.image,
                image_id=rec.image_id or rec.config.image.image,
                reason=rec.reason,
                message=self._container_message(rec),
                labels=rec.config.labels,
                annotations=rec.config.annotations,
                mounts=rec.config.mounts if rec.isolated or not rec.config.mounts else [],
                log_path=rec.log_path,
                resources=cri.ContainerResources(linux=rec.config.linux.resources),
            )

    def container_info(self, container_id: str) -> dict[str, str]:
        with self._lock:
            rec = self._container(container_id)
            return {
                "pid": str(rec.pid),
                "isolation": "runc" if rec.runc else "namespaces" if rec.isolated else "none",
                "rootfs": rec.rootfs or "host",
                "cgroup": "yes" if rec.cgroup else "no",
                "notes": "; ".join(rec.notes),
                "argv": " ".join(rec.argv),
                "workdir": rec.workdir,
            }

    def list_containers(self, filter: cri.ContainerFilter | None = None) -> list[cri.Container]:
        out = []
        with self._lock:
            for rec in self._containers.values():
                state = _CRI_STATE[rec.state]
                if filter is not None:
                    if filter.id and not rec.id.startswith(filter.id):
                        continue
                    if filter.pod_sandbox_id and not rec.sandbox_id.startswith(
                        filter.pod_sandbox_id
                    ):
                        continue
                    if filter.HasField("state") and filter.state.state != state:
                        continue
                    if not sandboxes_.matches(rec.config.labels, filter.label_selector):
                        continue
                out.append(
                    cri.Container(
                        id=rec.id,
                        pod_sandbox_id=rec.sandbox_id,
                        metadata=rec.config.metadata,
                        image=rec.config.image,
                        image_ref=rec.image_id or rec.config.image.image,
                        image_id=rec.image_id or rec.config.image.image,
                        state=state,
                        created_at=rec.created_at,
                        labels=rec.config.labels,
                        annotations=rec.config.annotations,
                    )
                )
        return out

    def update_container_resources(
        self, container_id: str, resources: cri.LinuxContainerResources
    ) -> None:
        with self._lock:
            rec = self._container(container_id)
            rec.config.linux.resources.CopyFrom(resources)
            cg = self._cgroup(rec)
            if cg is not None and rec.state is State.RUNNING:
                problems = cg.update(
                    memory_limit=resources.memory_limit_in_bytes,
                    cpu_quota=resources.cpu_quota,
                    cpu_period=resources.cpu_period,
                )
                if problems:
                    raise errors.FailedPrecondition("; ".join(problems))
            self._save_container(rec)

    def reopen_container_log(self, container_id: str) -> None:
        with self._lock:
            rec = self._container(container_id)
            monitor = self._monitors.get(container_id)
            if rec.state is not State.RUNNING or monitor is None:
                raise errors.FailedPrecondition(f"container {container_id} is not running")
            monitor.writer.reopen()

    # ------------------------------------------------------------------ images

    def image_status(self, ref: str) -> cri.Image | None:
        """A stored image first, else a nominal (recorded) reference."""
        stored = self.local_images.find(ref)
        return _image(stored) if stored is not None else self.images.status(ref)

    def image_note(self, ref: str) -> str:
        if self.local_images.find(ref) is None:
            return NOTE
        if self._runc is None:
            return (
                "a stored image; its containers run as host processes here "
                f"(runc unavailable: {self.isolation.description})"
            )
        return "a stored image: its containers run with runc in the image's rootfs"

    def list_images(self) -> list[cri.Image]:
        return [_image(i) for i in self.local_images.list()] + self.images.list()

    def pull_image(self, ref: str) -> str:
        """A stored image is there already (no network); any other reference is recorded."""
        stored = self.local_images.find(ref)
        return stored.id if stored is not None else self.images.pull(ref)

    def remove_image(self, ref: str) -> None:
        stored = self.local_images.find(ref)
        if stored is not None:
            with self._lock:
                in_use = any(r.image_id == stored.id for r in self._containers.values())
            self.local_images.remove(stored.id, keep_content=in_use)
            return
        self.images.remove(ref)

    # ------------------------------------------------------------------ exec

    def exec_spec(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        pid_file: Path | None = None,
    ) -> ExecSpec:
        """How to run `cmd` inside a running container (NotFound, FailedPrecondition).

        `tty` and `pid_file` matter for runc containers only: `runc exec --tty` makes the
        terminal in the container (otherwise the caller's terminal is passed through as
        stdio), and runc writes the host pid of the exec'd process to `pid_file` (killing
        `runc exec` does not kill that process).
        """
        if not cmd:
            raise errors.InvalidArgument("exec needs a command")
        with self._lock:
            rec = self._container(container_id)
            monitor = self._monitors.get(container_id)
            if rec.state is not State.RUNNING or monitor is None or monitor.dead:
                raise errors.FailedPrecondition(f"container {container_id} is not running")
            runc = self._runc if rec.runc else None
            if runc is None:
                return self._host_exec_spec(rec, cmd)
            started = monitor.runc_started
        if not started:
            # The wrapper runs before runc has made the container: give it a moment.
            if not runc.wait_started(rec.id, timeout=2.0):
                raise errors.FailedPrecondition(f"container {container_id} is not running")
            monitor.runc_started = True
        # runc gives the process the container's env, cwd, user and cgroup.
        return ExecSpec(
            argv=runc.exec_argv(rec.id, cmd, tty=tty, pid_file=pid_file),
            env={"PATH": DEFAULT_PATH},
            cwd=str(self._cdir(rec.id)),
        )

    def _host_exec_spec(self, rec: ContainerRecord, cmd: Sequence[str]) -> ExecSpec:
        """exec_spec of a host-process container (lock held)."""
        argv = list(cmd)
        if rec.netns and not rec.isolated:
            argv = [self.isolation.nsenter or "nsenter", f"--net={rec.netns}", "--", *argv]
        if rec.isolated:
            target = self._namespace_pid(rec)
            argv = [
                self.isolation.nsenter,
                "-t",
                str(target),
                "-m",
                "-u",
                "-i",
                "-p",
                *(["-n"] if rec.netns else []),
                f"--wd={rec.workdir}",
                "--",
                *argv,
            ]
        cg = self._cgroup(rec)
        if cg is not None:
            argv = _launch.join_cgroups_argv(argv, cg.procs_files())
        return ExecSpec(argv=argv, env=dict(rec.env), cwd=rec.workdir)

    def _namespace_pid(self, rec: ContainerRecord) -> int:
        """The host pid of the container's namespace init (the child of `unshare`)."""
        deadline = time.monotonic() + 2.0
        while True:
            kids = _procfs.children(rec.pid)
            if kids:
                return kids[0]
            if time.monotonic() > deadline:
                raise errors.FailedPrecondition(
                    f"container {rec.id} has no namespace process to enter"
                )
            time.sleep(0.01)

    def exec_sync(
        self, container_id: str, cmd: Sequence[str], *, timeout: float
    ) -> tuple[bytes, bytes, int]:
        """Run `cmd` in the container and collect its output (blocking)."""
        pid_file = self._cdir(container_id) / f"exec-{uuid.uuid4().hex}.pid"
        spec = self.exec_spec(container_id, cmd, pid_file=pid_file)
        try:
            proc = subprocess.Popen(
                spec.argv,
                env=spec.env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            # As a shell reports it: the command could not be found or run.
            code = 127 if isinstance(e, FileNotFoundError) else 126
            return b"", f"{cmd[0]}: {e.strerror}\n".encode(), code
        try:
            out, err = proc.communicate(timeout=timeout if timeout > 0 else None)
        except subprocess.TimeoutExpired:
            # In a runc container the command is not in our group: kill it by its pid,
            # and let `runc exec` reap it (an orphan left to the host's init would keep
            # the container's PID namespace, and so its stop, waiting until reaped).
            if _kill_tree(pid_file):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_KILL_WAIT)
            self._killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise errors.DeadlineExceeded(
                f"command {list(cmd)} timed out after {timeout:g}s"
            ) from None
        finally:
            # The group may hold children the command left behind.
            self._killpg(proc.pid, signal.SIGKILL)
            remove(pid_file)
        code = proc.returncode
        return out, err, (128 - code if code < 0 else code)

    # ------------------------------------------------------------------ stats

    def container_stats(self, container_id: str) -> cri.ContainerStats:
        with self._lock:
            rec = self._container(container_id)
        return self._stats(rec, None)

    def list_container_stats(
        self, filter: cri.ContainerStatsFilter | None = None
    ) -> list[cri.ContainerStats]:
        with self._lock:
            recs = [
                r
                for r in self._containers.values()
                if r.state is State.RUNNING
                and (
                    filter is None
                    or (
                        (not filter.id or r.id.startswith(filter.id))
                        and (
                            not filter.pod_sandbox_id
                            or r.sandbox_id.startswith(filter.pod_sandbox_id)
                        )
                        and sandboxes_.matches(r.config.labels, filter.label_selector)
                    )
                )
            ]
        groups: dict[int, list[_procfs.ProcStat]] = {}
        for pid in _procfs.all_pids():
            st = _procfs.stat(pid)
            if st is not None and not st.zombie:
                groups.setdefault(st.pgrp, []).append(st)
        return [self._stats(r, groups) for r in recs]

    def _stats(
        self, rec: ContainerRecord, groups: dict[int, list[_procfs.ProcStat]] | None
    ) -> cri.ContainerStats:
        now = _now()
        cpu_ns: int | None = None
        memory: tuple[int, int, int] | None = None
        if rec.state is State.RUNNING:
            cg = self._cgroup(rec)
            if cg is not None:
                cpu_ns = cg.cpu_nanoseconds()
                memory = cg.memory()
            if cpu_ns is None or memory is None:
                procs = (
                    groups.get(rec.pid, [])
                    if groups is not None
                    else _procfs.group_members(rec.pid)
                )
                if cpu_ns is None:
                    cpu_ns = _procfs.cpu_nanoseconds(procs)
                if memory is None:
                    rss = _procfs.rss_bytes(procs)
                    memory = (rss, rss, rss)
        usage, working_set, rss = memory or (0, 0, 0)
        return cri.ContainerStats(
            attributes=cri.ContainerAttributes(
                id=rec.id,
                metadata=rec.config.metadata,
                labels=rec.config.labels,
                annotations=rec.config.annotations,
            ),
            cpu=cri.CpuUsage(
                timestamp=now, usage_core_nano_seconds=cri.UInt64Value(value=cpu_ns or 0)
            ),
            memory=cri.MemoryUsage(
                timestamp=now,
                working_set_bytes=cri.UInt64Value(value=working_set),
                usage_bytes=cri.UInt64Value(value=usage),
                rss_bytes=cri.UInt64Value(value=rss),
            ),
        )


_CRI_STATE = {
    State.CREATED: cri.CONTAINER_CREATED,
    State.RUNNING: cri.CONTAINER_RUNNING,
    State.EXITED: cri.CONTAINER_EXITED,
}


def _sandbox_netns(config: cri.PodSandboxConfig) -> str:
    """The pod network namespace a sandbox's containers run in ("" for the node's)."""
    if config.linux.security_context.namespace_options.network != cri.POD:
        return ""
    return config.annotations.get(protocol.POD_NETNS, "")


def _kill_tree(pid_file: Path) -> bool:
    """SIGKILL the process named in `pid_file` and its descendants; False: no such file."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    pending, found = [pid], []
    while pending:
        p = pending.pop()
        found.append(p)
        pending.extend(_procfs.children(p))
    for p in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)
    return True


def _fallback_runc(root: Path) -> _runc.Runc | None:
    """A runc to clean up after, when this runtime does not run containers with it."""
    runc = shutil.which("runc")
    if runc is None:
        return None
    return _runc.Runc(
        runc, root=root / "runc", mount="mount", umount=shutil.which("umount") or "umount"
    )


def _cpu_shares(cg: _cgroups.ContainerCgroup, shares: int) -> list[str]:
    """Apply the container's CPU weight to its cpu cgroup; returns what could not be."""
    d = cg.dirs.get("cpu")
    if shares <= 0 or d is None:
        return []
    try:
        (d / "cpu.shares").write_text(str(shares))
    except OSError as e:
        return [f"cpu.shares={shares} not applied: {e.strerror}"]
    return []


def _image(image: StoredImage) -> cri.Image:
    out = cri.Image(
        id=image.id,
        repo_tags=image.names,
        repo_digests=repo_digests(image),
        size=image.size,
        spec=cri.ImageSpec(image=image.id),
    )
    user = image.config.user.partition(":")[0]
    if user.isdigit():
        out.uid.value = int(user)
    elif user:
        out.username = user
    return out
