"""The VM runtime's state: sandboxes as records, VM containers as libvirt domains.

Guarantees:

* Thread-safe: gRPC handlers call it from worker threads. One lock guards the records (never
  held across a libvirt call); one lock per VM serializes the calls that change its power
  state (start, stop, reboot, snapshot, restore, remove).
* Persistent: every change is written under `root_dir` before the call returns; a new
  `VmManager` over the same directory (and libvirt) finds every VM and its restart count.
* libvirt is opened by `start`, or with `connect_on_demand` and no VMs yet by the first
  call that needs it (libvirt-python is not even imported before): until then the runtime
  is ready and says so; a failure to open makes it not ready, saying why, and the call
  that needed it Unavailable; the next such call tries again.
* A VM container maps to one domain named ``arktos-<id prefix>``; removing the container
  destroys the domain, undefines it with its snapshots' metadata and deletes its overlay,
  seed and state disk. The image is never written: disks are copy-on-write overlays.
* The serial console goes to a raw file that a pump thread converts into the container's
  CRI log (``log_directory/log_path``), surviving runtime restarts without repeated lines.
* A sandbox config with a pod-network NIC (`POD_NIC`) gets its VMs a first NIC on that
  bridge with that MAC address (and no NIC of their own on the runtime's bridge;
  Neutron ports' NICs stay there), told the address by the kernel's `ip=` parameter
  (kernel images) or the seed's network-config (disk images); the sandbox's status
  reports the pod's addresses (`POD_IPS`).
* VM facts are on the container's annotations (see `VM_*` keys); CRI states: CREATED until
  first started, RUNNING while the domain runs or is paused/suspended, EXITED when it is off
  (exit 0, reason "Shutdown" after a clean or requested power-off; 1, "Crashed" otherwise).
* Power calls are idempotent: `pause_vm` freezes a running VM (libvirt suspend),
  `suspend_vm` saves its memory to a managed save file and stops it (the VM stays
  RUNNING to the CRI, state and power state "suspended"), `resume_vm` runs a paused or
  suspended VM again where it was. `stop_container` on a suspended VM discards the saved
  memory: the VM is then off.
* A VM is defined able to grow: up to `max_vcpus` (the node's CPUs) vCPUs and
  `memory_growth` times its memory. `update_resources` applies a new size live (vCPU
  hot-plug, memory balloon) and in the domain's config, or refuses it with
  FailedPrecondition saying why, leaving the VM as it was.
* With the NICs annotation, `update_resources` gives an existing VM exactly those network
  ports (found by MAC address): new ones are attached (`interface_xml`, on the runtime's
  bridge) to the running domain and its config, or to the config alone while it is off;
  ports no longer listed are detached (a running guest is asked to let go of the NIC and
  loses it once it does, at the latest when it is next powered off). Idempotent. The
  record's annotation then lists the ports (so does every status, also after a runtime
  restart). Refused with FailedPrecondition saying why: no bridge (or it does not exist),
  a suspended VM (its saved memory knows only the NICs it had), libvirt's refusal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

from arktos_lite.runtime import _errors as errors, _protocol, _sandboxes as sandboxes_, _vmresources
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process._logs import CriLogWriter, LogPump, rotated_paths
from arktos_lite.runtime.vm import _domain, _libvirt
from arktos_lite.runtime.vm._config import VmRuntimeConfig
from arktos_lite.runtime.vm._images import ImageKind, VmImage, VmImages
from arktos_lite.runtime.vm._libvirt import DomainState, ShutoffReason
from arktos_lite.runtime.vm._records import VmRecord

log = logging.getLogger(__name__)

VIRTUAL_MACHINE = "arktos.futurewei.com/virtual-machine"
# The pod's network ports the guest gets a NIC for (see `_domain.parse_nics`).
NICS = "arktos.futurewei.com/nics"
# The annotation keys every VM runtime reports (one definition, in the Runtime protocol).
VM_ID = _protocol.VM_ID
VM_STATE = _protocol.VM_STATE
VM_POWER_STATE = _protocol.VM_POWER_STATE
VM_RESTART_COUNT = _protocol.VM_RESTART_COUNT
VM_VCPUS = _protocol.VM_VCPUS
VM_MEMORY = _protocol.VM_MEMORY
# The guest's NIC on the pod network, on the sandbox config (see `_domain.parse_pod_nic`).
POD_NIC = _protocol.POD_NIC
POD_IPS = _protocol.POD_IPS
DOMAIN_PREFIX = "arktos-"
_STATE_DISK_SIZE = "64M"
_STOP_POLL = 0.05
# How a VM's notes begin when it was defined without a device for its network.
_NO_PORT_DEVICE = "no network device"


def _now() -> int:
    return time.time_ns()


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    """A VM as libvirt sees it now."""

    state: cri.ContainerState
    vm_state: str
    power_state: str
    exit_code: int = 0
    reason: str = ""
    # (vCPUs, maximum vCPUs, memory, maximum memory) when libvirt told them.
    sizes: tuple[int, int, int, int] | None = None


def observe(
    rec: VmRecord, state: tuple[DomainState, int] | None, *, saved: bool = False
) -> Observed:
    """The CRI and Arktos view of a domain's libvirt state (None: the domain is gone);
    `saved`: the domain has a managed save image (it is suspended while shut off)."""
    if state is None:
        return Observed(cri.CONTAINER_EXITED, "deleted", "nostate", 1, "DomainMissing")
    st, reason = state
    if st in (DomainState.RUNNING, DomainState.BLOCKED, DomainState.SHUTDOWN):
        return Observed(cri.CONTAINER_RUNNING, "active", "running")
    if st is DomainState.PAUSED:
        return Observed(cri.CONTAINER_RUNNING, "paused", "paused")
    if st is DomainState.PMSUSPENDED:
        return Observed(cri.CONTAINER_RUNNING, "suspended", "suspended")
    if st is DomainState.CRASHED:
        return Observed(cri.CONTAINER_EXITED, "error", "crashed", 1, "Crashed")
    if st is DomainState.SHUTOFF:
        if saved:
            return Observed(cri.CONTAINER_RUNNING, "suspended", "suspended")
        if not rec.started:
            return Observed(cri.CONTAINER_CREATED, "building", "nostate")
        clean = reason in (ShutoffReason.SHUTDOWN, ShutoffReason.SAVED) or (
            reason == ShutoffReason.DESTROYED and rec.stop_requested
        )
        if clean:
            return Observed(cri.CONTAINER_EXITED, "stopped", "shutdown", 0, "Shutdown")
        return Observed(cri.CONTAINER_EXITED, "stopped", "shutdown", 1, "Crashed")
    if not rec.started:
        return Observed(cri.CONTAINER_CREATED, "building", "nostate")
    return Observed(cri.CONTAINER_UNKNOWN, "error", "nostate")


class VmManager:
    """Sandboxes and VM containers of one VM runtime (see the module docstring)."""

    def __init__(self, config: VmRuntimeConfig) -> None:
        self.config = config
        self.root = config.root_dir
        self.sandboxes = sandboxes_.Sandboxes(self.root / "sandboxes")
        self._vm_dir = self.root / "vms"
        self.images = VmImages(self.root)
        self._lock = threading.Lock()
        self._vms: dict[str, VmRecord] = {}
        self._vm_locks: dict[str, threading.Lock] = {}
        # Containers being defined (id -> sandbox, name, attempt): a second create of the
        # same one while the first is still in libvirt is refused, as when it exists.
        self._creating: dict[str, tuple[str, str, int]] = {}
        self._pumps: dict[str, tuple[LogPump, CriLogWriter]] = {}
        self._pump_lock = threading.Lock()
        self._closing = threading.Event()
        self._pump_thread: threading.Thread | None = None
        self._conn: _libvirt.Connection | None = None
        # Why the last attempt to open libvirt failed (None: none failed since it opened).
        self._conn_error: str | None = None
        self._conn_lock = threading.Lock()
        self.overlays = (
            config.overlays if config.overlays is not None else shutil.which("qemu-img") is not None
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the records, open libvirt (with `connect_on_demand` only when there are VMs
        already), start converting serial logs. Blocks."""
        self.sandboxes.load()
        self._vm_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self._vm_dir.glob("*/vm.json")):
            data = sandboxes_.read_json(path)
            if data is None:
                continue
            try:
                rec = VmRecord.from_json(data)
            except (KeyError, TypeError, ValueError) as e:
                log.warning("ignoring unreadable VM record %s: %s", path, e)
                continue
            self._vms[rec.id] = rec
            self._vm_locks[rec.id] = threading.Lock()
            self._open_pump(rec)
        on_demand = self.config.connect_on_demand and not self._vms
        if not on_demand:
            try:
                self._connect(on_demand=False)
            except errors.Unavailable as e:
                raise RuntimeError(str(e)) from e
        self._pump_thread = threading.Thread(target=self._pump_loop, name="vm-logs", daemon=True)
        self._pump_thread.start()
        log.info(
            "VM runtime on %s (%s): %d sandboxes, %d VMs",
            self.config.libvirt_uri,
            "opened on the first VM call" if on_demand else f"{self.conn.driver} driver",
            len(self.sandboxes),
            len(self._vms),
        )

    def close(self) -> None:
        """Stop converting logs and close libvirt; VMs keep running."""
        self._closing.set()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=5)
        with self._pump_lock:
            for pump, writer in self._pumps.values():
                with contextlib.suppress(OSError):
                    pump.pump()
                writer.close()
            self._pumps.clear()
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def conn(self) -> _libvirt.Connection:
        """The libvirt connection, opened on first use (Unavailable when it cannot be)."""
        conn = self._conn
        return conn if conn is not None else self._connect()

    def _connect(self, *, on_demand: bool = True) -> _libvirt.Connection:
        with self._conn_lock:
            if self._closing.is_set():
                raise errors.Unavailable("the VM runtime is closing")
            if self._conn is None:
                self._conn = self._open()
                if on_demand:
                    log.info(
                        "VM runtime opened libvirt %s (%s driver)",
                        self._conn.uri,
                        self._conn.driver,
                    )
            return self._conn

    def _open(self) -> _libvirt.Connection:
        uri = self.config.libvirt_uri
        try:
            conn = _libvirt.Connection.open(uri)
        except (_libvirt.LibvirtError, ImportError) as e:
            message = e.message if isinstance(e, _libvirt.LibvirtError) else str(e)
            hint = ""
            if "libvirt-qemu" in message:
                hint = (
                    " (as root the embedded QEMU driver needs the system user libvirt-qemu: "
                    "useradd --system --no-create-home libvirt-qemu)"
                )
            self._conn_error = f"cannot open libvirt {uri}: {message}{hint}"
            raise errors.Unavailable(self._conn_error) from e
        self._conn_error = None
        return conn

    @property
    def connected(self) -> bool:
        """Whether libvirt is open (with `connect_on_demand` it may not be yet)."""
        return self._conn is not None

    def ready(self) -> tuple[bool, str]:
        conn = self._conn
        if conn is None:
            if self._conn_error is not None:
                return False, self._conn_error
            if self._closing.is_set() or not self.config.connect_on_demand:
                return False, "not connected to libvirt"
            return True, f"libvirt {self.config.libvirt_uri} is opened on the first VM call"
        if not conn.alive():
            return False, f"the libvirt connection to {conn.uri} is gone"
        return True, ""

    # ------------------------------------------------------------------ logs

    def _open_pump(self, rec: VmRecord) -> None:
        if not self.config.serial_log:
            return
        cdir = self._cdir(rec.id)
        writer = CriLogWriter(
            Path(rec.log_path),
            max_bytes=self.config.log_max_bytes,
            max_files=self.config.log_max_files,
        )
        pump = LogPump(raw_dir=cdir / "serial", writer=writer, state_path=cdir / "log-offsets.json")
        with self._pump_lock:
            self._pumps[rec.id] = (pump, writer)

    def _close_pump(self, container_id: str) -> None:
        with self._pump_lock:
            entry = self._pumps.pop(container_id, None)
            if entry is not None:
                with contextlib.suppress(OSError):
                    entry[0].finish()
                entry[1].close()

    def _pump_loop(self) -> None:
        while not self._closing.wait(self.config.log_interval):
            with self._pump_lock:
                for cid, (pump, _) in list(self._pumps.items()):
                    try:
                        pump.pump()
                    except OSError as e:
                        log.debug("serial log of %s: %s", cid, e)

    # ------------------------------------------------------------------ records

    def _cdir(self, container_id: str) -> Path:
        return self._vm_dir / container_id

    def _save(self, rec: VmRecord) -> None:
        sandboxes_.write_json(self._cdir(rec.id) / "vm.json", rec.to_json())

    def _vm(self, container_id: str) -> tuple[VmRecord, threading.Lock]:
        if not container_id:
            raise errors.InvalidArgument("a container id is required")
        with self._lock:
            rec = self._vms.get(container_id)
            if rec is None:
                raise errors.NotFound(f"VM container {container_id!r} not found")
            return rec, self._vm_locks[container_id]

    def _dom(self, rec: VmRecord) -> _libvirt.Domain:
        dom = self.conn.lookup(rec.domain)
        if dom is None:
            raise errors.NotFound(f"the domain {rec.domain} of VM {rec.id} is gone")
        return dom

    # ------------------------------------------------------------------ sandboxes

    def run_pod_sandbox(self, config: cri.PodSandboxConfig, *, runtime_handler: str = "") -> str:
        return self.sandboxes.create(config, runtime_handler=runtime_handler).id

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        if self.sandboxes.find(sandbox_id) is None:
            return
        with self._lock:
            ids = [r.id for r in self._vms.values() if r.sandbox_id == sandbox_id]
        for cid in ids:
            with contextlib.suppress(errors.NotFound):
                self.stop_container(cid, timeout=0)
        self.sandboxes.mark_stopped(sandbox_id)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        with self._lock:
            ids = [r.id for r in self._vms.values() if r.sandbox_id == sandbox_id]
        for cid in ids:
            self.remove_container(cid)
        self.sandboxes.forget(sandbox_id)

    def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        # A guest on the pod network has the pod's addresses; others have none the
        # runtime knows of (their network is the bridge's).
        sb = self.sandboxes.find(sandbox_id)
        ips: list[str] = []
        if sb is not None and sb.config.annotations.get(POD_NIC):
            ips = [ip for ip in sb.config.annotations.get(POD_IPS, "").split(",") if ip]
        return self.sandboxes.status(
            sandbox_id,
            network=cri.PodSandboxNetworkStatus(
                ip=ips[0] if ips else "",
                additional_ips=[cri.PodIP(ip=ip) for ip in ips[1:]],
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
        spec = _domain.VmSpec.parse(
            config.annotations.get(VIRTUAL_MACHINE, ""),
            default_name=md.name,
            image=config.image.image,
        )
        image = self.images.find(spec.image)
        if image is None:
            raise errors.NotFound(
                f"VM image {spec.image!r} is not in the VM runtime's store: pull or import it"
            )
        with self._lock:
            sb = self.sandboxes.ready(sandbox_id)
            sandboxes_.refuse_second_attempt(self._vms.values(), sandbox_id, md)
            for key in self._creating.values():
                if key == (sandbox_id, md.name, md.attempt):
                    raise errors.AlreadyExists(
                        f"container {md.name} attempt {md.attempt} is being created"
                    )
            cid = sandboxes_.new_id()
            self._creating[cid] = (sandbox_id, md.name, md.attempt)
            cdir = self._cdir(cid)
            cdir.mkdir(parents=True)
        try:
            rec = self._define(cid, sb, config, spec, image)
        except BaseException:
            shutil.rmtree(cdir, ignore_errors=True)
            with self._lock:
                self._creating.pop(cid, None)
            raise
        with self._lock:
            self._creating.pop(cid, None)
            self._vms[cid] = rec
            self._vm_locks[cid] = threading.Lock()
            self._save(rec)
        self._open_pump(rec)
        log.debug("VM %s (%s) defined as %s in sandbox %s", cid, md.name, rec.domain, sandbox_id)
        return cid

    def _define(
        self,
        cid: str,
        sb: sandboxes_.SandboxRecord,
        config: cri.ContainerConfig,
        spec: _domain.VmSpec,
        image: VmImage,
    ) -> VmRecord:
        cdir = self._cdir(cid)
        if sb.config.log_directory and config.log_path:
            log_path = Path(sb.config.log_directory) / config.log_path
        else:
            log_path = cdir / "console.log"
        rec = VmRecord(
            id=cid,
            sandbox_id=sb.id,
            config=config,
            created_at=_now(),
            log_path=str(log_path),
            domain=f"{DOMAIN_PREFIX}{cid[:16]}",
            uuid="",
            image_id=image.id,
            image_ref=spec.image,
        )
        pod_nic = _domain.parse_pod_nic(sb.config.annotations.get(POD_NIC, ""))
        nics = _domain.parse_nics(config.annotations.get(NICS, ""))
        bridge = self.config.bridge
        if bridge:
            missing = self.config.bridge_missing()
            if missing is not None:
                bridge = ""
                if pod_nic is None:
                    rec.notes.append(f"no network device: {missing}")
                elif nics:
                    rec.notes.append(f"no network device for the pod's ports: {missing}")
        elif nics:
            rec.notes.append("no network device for the pod's ports: no bridge configured")
        # The Neutron ports' NICs the guest gets (on the runtime's bridge).
        port_nics = nics if bridge else ()
        if pod_nic is not None:
            # First, so that it is the guest's first NIC (eth0); the guest then gets no
            # NIC of its own on the runtime's bridge.
            nics = (pod_nic.nic, *nics)
        disks: list[_domain.DiskSpec] = []
        kernel: _domain.KernelBoot | None = None
        if image.kind is ImageKind.DISK:
            if self.overlays:
                overlay = cdir / "disk.qcow2"
                _qemu_img(
                    "create", "-q", "-f", "qcow2", "-F", image.format, "-b", str(image.disk),
                    str(overlay),
                )  # fmt: skip
                rec.overlay = str(overlay)
                disks.append(_domain.DiskSpec(overlay, "qcow2"))
            else:
                rec.notes.append("no copy-on-write overlay (disabled): the image is used as is")
                disks.append(_domain.DiskSpec(image.disk, image.format))
            if self.config.cloud_init:
                seed = cdir / "seed.iso"
                hostname = sb.config.hostname or sb.config.metadata.name
                try:
                    _domain.write_seed(
                        seed,
                        meta=_domain.meta_data(spec, instance_id=cid, hostname=hostname),
                        user=_domain.user_data(spec),
                        network=(
                            _domain.network_config(pod_nic, others=port_nics)
                            if pod_nic is not None
                            else b""
                        ),
                    )
                except ImportError as e:
                    raise errors.FailedPrecondition(
                        f"the cloud-init seed needs pycdlib ({e}): install it, or run the VM "
                        "runtime with cloud_init=False"
                    ) from e
                rec.seed = str(seed)
                disks.append(
                    _domain.DiskSpec(
                        seed, "raw", device="cdrom", target="hdc", bus="ide", readonly=True
                    )
                )
            elif pod_nic is not None:
                rec.notes.append(
                    f"the guest is not told its pod address {pod_nic.address} (no cloud-init seed)"
                )
            if spec.key_pair_name and not spec.public_keys:
                rec.notes.append(
                    f"key pair {spec.key_pair_name!r} is not resolved (no key store): use publicKey"
                )
        else:
            cmdline = image.cmdline
            if "console=" not in cmdline:
                cmdline = f"{cmdline} console=ttyS0".strip()
            if pod_nic is not None:
                # Alone, the guest's NIC need not be named; beside others it is eth0.
                device = "eth0" if port_nics else ""
                cmdline = f"{cmdline} {_domain.kernel_ip_param(pod_nic, device=device)}"
            kernel = _domain.KernelBoot(image.kernel, image.initrd, cmdline)
            if self.overlays:
                # Internal snapshots keep the VM's memory in a qcow2 disk: a kernel VM gets
                # an empty one so that CreateSnapshot works for it too.
                state_disk = cdir / "state.qcow2"
                _qemu_img("create", "-q", "-f", "qcow2", str(state_disk), _STATE_DISK_SIZE)
                rec.state_disk = str(state_disk)
                disks.append(_domain.DiskSpec(state_disk, "qcow2"))
        serial: Path | None = None
        if self.config.serial_log:
            (cdir / "serial").mkdir()
            serial = cdir / "serial" / "stdout"
            serial.touch()
        conn = self.conn
        xml = _domain.domain_xml(
            name=rec.domain,
            domain_type="test" if conn.driver.upper() == "TEST" else "qemu",
            vcpus=spec.vcpus,
            memory=spec.memory,
            max_vcpus=max(spec.vcpus, self.config.max_vcpus or os.cpu_count() or 1),
            max_memory=max(spec.memory, int(spec.memory * self.config.memory_growth)),
            disks=disks,
            kernel=kernel,
            serial_log=serial,
            bridge=bridge,
            nics=nics,
            description=f"arktos VM {spec.name} (container {cid})",
        )
        (cdir / "domain.xml").write_text(xml)
        try:
            rec.uuid = conn.define(xml).uuid
        except _libvirt.LibvirtError as e:
            raise errors.InvalidArgument(f"libvirt refused the VM {spec.name}: {e}") from e
        return rec

    def start_container(self, container_id: str) -> None:
        rec, lock = self._vm(container_id)
        with lock:
            dom = self._dom(rec)
            st, _ = dom.state()
            if st not in (DomainState.SHUTOFF, DomainState.CRASHED):
                raise errors.FailedPrecondition(f"VM {container_id} is running already")
            if st is DomainState.CRASHED:
                with contextlib.suppress(_libvirt.LibvirtError):
                    dom.destroy()
            restoring = st is DomainState.SHUTOFF and _saved(dom)
            try:
                dom.create()
            except _libvirt.LibvirtError as e:
                raise errors.Internal(f"cannot start VM {container_id}: {e}") from e
            if restoring:
                return  # a suspended VM resumed: it never stopped running to the CRI
            with self._lock:
                rec.started = True
                rec.started_at = _now()
                rec.finished_at = 0
                rec.stop_requested = False
                self._save(rec)

    def stop_container(self, container_id: str, *, timeout: float) -> None:
        rec, lock = self._vm(container_id)
        with lock:
            dom = self.conn.lookup(rec.domain)
            if dom is None:
                return
            st, _ = dom.state()
            if st is DomainState.SHUTOFF and _saved(dom):
                # Suspended: the saved memory is all that runs; dropping it powers off.
                with self._lock:
                    rec.stop_requested = True
                    self._save(rec)
                try:
                    dom.remove_managed_save()
                except _libvirt.LibvirtError as e:
                    raise errors.Internal(f"cannot stop suspended VM {container_id}: {e}") from e
                self._note_exit(rec)
                return
            if st in (DomainState.SHUTOFF, DomainState.CRASHED):
                return
            with self._lock:
                rec.stop_requested = True
                self._save(rec)
            deadline = time.monotonic() + max(0.0, timeout)
            if timeout > 0:
                with contextlib.suppress(_libvirt.LibvirtError):
                    dom.shutdown()
                while time.monotonic() < deadline:
                    if dom.state()[0] is DomainState.SHUTOFF:
                        break
                    time.sleep(_STOP_POLL)
            if dom.state()[0] is not DomainState.SHUTOFF:
                with contextlib.suppress(_libvirt.LibvirtError):
                    dom.destroy()
            self._note_exit(rec)

    def _note_exit(self, rec: VmRecord) -> None:
        with self._lock:
            if rec.started and rec.finished_at < rec.started_at:
                rec.finished_at = _now()
                self._save(rec)

    def remove_container(self, container_id: str) -> None:
        try:
            rec, lock = self._vm(container_id)
        except errors.NotFound:
            return  # idempotent
        with lock:
            dom = self.conn.lookup(rec.domain)
            if dom is not None:
                if dom.state()[0] is not DomainState.SHUTOFF:
                    with contextlib.suppress(_libvirt.LibvirtError):
                        dom.destroy()
                dom.undefine()
            self._close_pump(container_id)
            with self._lock:
                self._vms.pop(container_id, None)
                self._vm_locks.pop(container_id, None)
            for p in rotated_paths(Path(rec.log_path), self.config.log_max_files):
                sandboxes_.remove(p)
            shutil.rmtree(self._cdir(container_id), ignore_errors=True)

    def _annotations(self, rec: VmRecord, seen: Observed, uuid_: str) -> dict[str, str]:
        annotations = dict(rec.config.annotations)
        annotations[VM_ID] = uuid_ or rec.uuid
        annotations[VM_STATE] = seen.vm_state
        annotations[VM_POWER_STATE] = seen.power_state
        annotations[VM_RESTART_COUNT] = str(rec.restart_count)
        if seen.sizes is not None:
            annotations[VM_VCPUS] = str(seen.sizes[0])
            annotations[VM_MEMORY] = str(seen.sizes[2])
        return annotations

    def _observe(self, rec: VmRecord) -> Observed:
        dom = self.conn.lookup(rec.domain)
        if dom is None:
            seen = observe(rec, None)
        else:
            state = dom.state()
            seen = observe(rec, state, saved=state[0] is DomainState.SHUTOFF and _saved(dom))
            with contextlib.suppress(_libvirt.LibvirtError):
                seen = dataclasses.replace(seen, sizes=dom.sizes())
        if seen.state == cri.CONTAINER_EXITED:
            self._note_exit(rec)
        return seen

    def container_status(self, container_id: str) -> cri.ContainerStatus:
        rec, _ = self._vm(container_id)
        seen = self._observe(rec)
        with self._lock:
            return cri.ContainerStatus(
                id=rec.id,
                metadata=rec.config.metadata,
                state=seen.state,
                created_at=rec.created_at,
                started_at=rec.started_at,
                finished_at=rec.finished_at if seen.state == cri.CONTAINER_EXITED else 0,
                exit_code=seen.exit_code,
                image=rec.config.image,
                image_ref=rec.image_id,
                image_id=rec.image_id,
                reason=seen.reason,
                message="; ".join(rec.notes),
                labels=rec.config.labels,
                annotations=self._annotations(rec, seen, rec.uuid),
                log_path=rec.log_path,
            )

    def container_info(self, container_id: str) -> dict[str, str]:
        rec, _ = self._vm(container_id)
        return {
            "domain": rec.domain,
            "uuid": rec.uuid,
            "overlay": rec.overlay,
            "seed": rec.seed,
            "stateDisk": rec.state_disk,
            "notes": "; ".join(rec.notes),
        }

    def list_containers(self, filter: cri.ContainerFilter | None = None) -> list[cri.Container]:
        with self._lock:
            recs = list(self._vms.values())
        out = []
        for rec in recs:
            if filter is not None:
                if filter.id and not rec.id.startswith(filter.id):
                    continue
                if filter.pod_sandbox_id and not rec.sandbox_id.startswith(filter.pod_sandbox_id):
                    continue
                if not sandboxes_.matches(rec.config.labels, filter.label_selector):
                    continue
            seen = self._observe(rec)
            if filter is not None and filter.HasField("state") and filter.state.state != seen.state:
                continue
            out.append(
                cri.Container(
                    id=rec.id,
                    pod_sandbox_id=rec.sandbox_id,
                    metadata=rec.config.metadata,
                    image=rec.config.image,
                    image_ref=rec.image_id,
                    image_id=rec.image_id,
                    state=seen.state,
                    created_at=rec.created_at,
                    labels=rec.config.labels,
                    annotations=self._annotations(rec, seen, rec.uuid),
                )
            )
        return out

    def reopen_container_log(self, container_id: str) -> None:
        self._vm(container_id)
        with self._pump_lock:
            entry = self._pumps.get(container_id)
            if entry is not None:
                entry[1].reopen()

    # ------------------------------------------------------------------ VM calls

    def _running(self, rec: VmRecord, what: str) -> _libvirt.Domain:
        dom = self._dom(rec)
        st, _ = dom.state()
        if st not in (DomainState.RUNNING, DomainState.BLOCKED, DomainState.PAUSED):
            raise errors.FailedPrecondition(
                f"cannot {what} VM {rec.id}: it is {self._power(rec, dom)}, not running"
            )
        return dom

    def reboot_vm(self, container_id: str, *, delay: float = 0.0, flags: int = 0) -> None:
        rec, lock = self._vm(container_id)
        self._running(rec, "reboot")
        if delay > 0:
            time.sleep(min(delay, self.config.max_reboot_delay))
        with lock:
            dom = self._running(rec, "reboot")
            try:
                dom.reboot(flags)
            except _libvirt.LibvirtError as e:
                raise errors.Internal(f"cannot reboot VM {container_id}: {e}") from e
            with self._lock:
                rec.restart_count += 1
                self._save(rec)

    def create_snapshot(self, container_id: str, snapshot_id: str) -> None:
        if not snapshot_id:
            raise errors.InvalidArgument("a snapshot id is required")
        rec, lock = self._vm(container_id)
        with lock:
            dom = self._running(rec, "snapshot")
            if snapshot_id in dom.snapshot_names():
                raise errors.AlreadyExists(
                    f"VM {container_id} has a snapshot {snapshot_id!r} already"
                )
            try:
                dom.create_snapshot(_domain.snapshot_xml(snapshot_id))
            except _libvirt.LibvirtError as e:
                raise errors.Internal(f"cannot snapshot VM {container_id}: {e}") from e

    def restore_to_snapshot(self, container_id: str, snapshot_id: str, *, flags: int = 0) -> None:
        if not snapshot_id:
            raise errors.InvalidArgument("a snapshot id is required")
        rec, lock = self._vm(container_id)
        with lock:
            dom = self._dom(rec)
            try:
                dom.revert_to_snapshot(snapshot_id, flags)
            except _libvirt.LibvirtError as e:
                if e.code == _libvirt.ERR_NO_DOMAIN_SNAPSHOT:
                    raise errors.NotFound(
                        f"VM {container_id} has no snapshot {snapshot_id!r}"
                    ) from e
                raise errors.Internal(f"cannot restore VM {container_id}: {e}") from e
            if dom.state()[0] is not DomainState.SHUTOFF:
                with self._lock:
                    if not rec.started:
                        rec.started = True
                        rec.started_at = _now()
                    rec.stop_requested = False
                    self._save(rec)

    def pause_vm(self, container_id: str) -> None:
        rec, lock = self._vm(container_id)
        with lock:
            dom = self._dom(rec)
            st, _ = dom.state()
            if st is DomainState.PAUSED:
                return
            if st not in (DomainState.RUNNING, DomainState.BLOCKED):
                raise errors.FailedPrecondition(
                    f"cannot pause VM {container_id}: it is {self._power(rec, dom)}, not running"
                )
            try:
                dom.suspend()
            except _libvirt.LibvirtError as e:
                raise errors.Internal(f"cannot pause VM {container_id}: {e}") from e

    def resume_vm(self, container_id: str) -> None:
        rec, lock = self._vm(container_id)
        with lock:
            dom = self._dom(rec)
            st, _ = dom.state()
            try:
                if st is DomainState.PAUSED:
                    dom.resume()
                elif st is DomainState.SHUTOFF and _saved(dom):
                    dom.create()  # restores the managed save, running
                elif st not in (DomainState.RUNNING, DomainState.BLOCKED):
                    raise errors.FailedPrecondition(
                        f"cannot resume VM {container_id}: it is {self._power(rec, dom)}, "
                        "not paused or suspended"
                    )
            except _libvirt.LibvirtError as e:
                raise errors.Internal(f"cannot resume VM {container_id}: {e}") from e

    def suspend_vm(self, container_id: str) -> None:
        rec, lock = self._vm(container_id)
        with lock:
            dom = self._dom(rec)
            st, _ = dom.state()
            if st is DomainState.SHUTOFF and _saved(dom):
                return
            if st not in (DomainState.RUNNING, DomainState.BLOCKED, DomainState.PAUSED):
                raise errors.FailedPrecondition(
                    f"cannot suspend VM {container_id}: it is {self._power(rec, dom)}, not running"
                )
            try:
                dom.managed_save()
            except _libvirt.LibvirtError as e:
                raise errors.Internal(f"cannot suspend VM {container_id}: {e}") from e

    def _power(self, rec: VmRecord, dom: _libvirt.Domain) -> str:
        """The VM's Arktos state, for messages (stopped, suspended, ...)."""
        state = dom.state()
        return observe(rec, state, saved=state[0] is DomainState.SHUTOFF and _saved(dom)).vm_state

    def update_resources(
        self,
        container_id: str,
        resources: cri.LinuxContainerResources | None,
        annotations: Mapping[str, str],
    ) -> None:
        """Resize a VM to what the VM spec in `annotations` (else `resources`) asks; with a
        NICs annotation, also give it exactly those NICs (see `_set_nics`)."""
        rec, lock = self._vm(container_id)
        vcpus, memory = _wanted_size(rec, resources, annotations)
        nics = _domain.parse_nics(annotations[NICS]) if NICS in annotations else None
        with lock:
            dom = self._dom(rec)
            st, _ = dom.state()
            suspended = st is DomainState.SHUTOFF and _saved(dom)
            if nics is not None and suspended:
                raise errors.FailedPrecondition(
                    f"cannot change the NICs of VM {container_id} while it is suspended "
                    "(its saved memory knows only the NICs it had): resume it first"
                )
            if vcpus is not None or memory is not None:
                if suspended:
                    raise errors.FailedPrecondition(
                        f"cannot resize VM {container_id} while it is suspended: resume it first"
                    )
                self._resize(rec, dom, st, vcpus=vcpus, memory=memory)
            if nics is not None:
                self._set_nics(rec, dom, st, nics)

    def _resize(
        self,
        rec: VmRecord,
        dom: _libvirt.Domain,
        st: DomainState,
        *,
        vcpus: int | None,
        memory: int | None,
    ) -> None:
        try:
            have_vcpus, max_vcpus, have_memory, max_memory = dom.sizes()
        except _libvirt.LibvirtError as e:
            raise errors.Internal(f"cannot read the size of VM {rec.id}: {e}") from e
        beyond = []
        if vcpus is not None and vcpus > max_vcpus:
            beyond.append(f"{vcpus} vCPUs (at most {max_vcpus})")
        if memory is not None and memory > max_memory:
            beyond.append(f"{memory} bytes of memory (at most {max_memory})")
        if beyond:
            raise errors.FailedPrecondition(
                f"VM {rec.id} cannot grow to {' and '.join(beyond)}: it was "
                "defined with these maxima; recreate the pod to go beyond them"
            )
        live = st not in (DomainState.SHUTOFF, DomainState.CRASHED)
        try:
            if vcpus is not None and vcpus != have_vcpus:
                dom.set_vcpus(vcpus, live=live)
            if memory is not None and abs(memory - have_memory) >= 1024:
                dom.set_memory(memory, live=live)
        except _libvirt.LibvirtError as e:
            raise errors.FailedPrecondition(
                f"libvirt refused to resize VM {rec.id}: {e.message}"
            ) from e
        log.debug("VM %s resized to %s vCPUs, %s bytes", rec.id, vcpus, memory)

    def _set_nics(
        self,
        rec: VmRecord,
        dom: _libvirt.Domain,
        st: DomainState,
        nics: tuple[_domain.NicSpec, ...],
    ) -> None:
        """Give the VM one NIC per entry of `nics` and no other port NIC (those it got from
        a NICs annotation), found by MAC address: new ones are attached (to the running
        domain and its config; to the config alone when it is off), others detached.
        Idempotent. The record's NICs annotation then lists `nics`."""
        live = st not in (DomainState.SHUTOFF, DomainState.CRASHED)
        try:
            running = _interfaces(dom.xml()) if live else {}
            persistent = _interfaces(dom.xml(inactive=True))
        except _libvirt.LibvirtError as e:
            raise errors.Internal(f"cannot read the devices of VM {rec.id}: {e.message}") from e
        wanted = {nic.mac.lower(): nic for nic in nics}
        try:
            recorded = _domain.parse_nics(rec.config.annotations.get(NICS, ""))
        except errors.InvalidArgument:
            recorded = ()
        # Port NICs: those the record lists, and any a failed call left behind (named as
        # `interface_xml` names a port's NIC); never the guest's other NICs (its own, or
        # the pod network's).
        ports = {n.mac.lower() for n in recorded} | {
            mac for mac, found in (running | persistent).items() if _is_port_nic(found)
        }
        attach = [
            nic
            for mac, nic in wanted.items()
            if mac not in persistent or (live and mac not in running)
        ]
        bridge = self.config.bridge
        if any(not nic.bridge for nic in attach):
            missing = self.config.bridge_missing()
            if missing is not None:
                names = ", ".join(nic.port_id or nic.name for nic in attach if not nic.bridge)
                raise errors.FailedPrecondition(
                    f"cannot attach port {names} to VM {rec.id}: {missing} "
                    "(vm-runtime --bridge, arktos up --vm-bridge)"
                )
        for mac in sorted(ports - wanted.keys()):
            try:
                for found, live_ in ((running.get(mac), True), (persistent.get(mac), False)):
                    if found is None:
                        continue
                    alias = _alias(found)
                    if alias.startswith("ua-"):
                        # Without waiting for the guest to let go of it (a guest that
                        # ignores the request keeps it until it is next powered off).
                        dom.detach_alias(alias, live=live_, config=not live_)
                    else:  # as the domain has it: libvirt finds it by its MAC address
                        dom.detach_device(_xml(found), live=live_, config=not live_)
            except _libvirt.LibvirtError as e:
                raise errors.FailedPrecondition(
                    f"libvirt refused to detach the NIC {mac} from VM {rec.id}: {e.message}"
                ) from e
            log.debug("VM %s: NIC %s detached", rec.id, mac)
        for nic in attach:
            mac = nic.mac.lower()
            try:
                dom.attach_device(
                    _domain.interface_xml(nic, bridge=bridge),
                    live=live and mac not in running,
                    config=mac not in persistent,
                )
            except _libvirt.LibvirtError as e:
                raise errors.FailedPrecondition(
                    f"libvirt refused to attach port {nic.port_id or nic.name} to VM {rec.id}: "
                    f"{e.message}"
                ) from e
            log.debug("VM %s: NIC %s (port %s) attached", rec.id, mac, nic.port_id)
        # A new config rather than a changed one: listings read it without the lock.
        config = cri.ContainerConfig()
        config.CopyFrom(rec.config)
        if nics:
            config.annotations[NICS] = _nics_json(nics)
        else:
            config.annotations.pop(NICS, None)
        with self._lock:
            rec.config = config
            if nics:  # it has a device for each port now
                rec.notes = [n for n in rec.notes if not n.startswith(_NO_PORT_DEVICE)]
            self._save(rec)

    # ------------------------------------------------------------------ images

    def images_in_use(self) -> set[str]:
        with self._lock:
            return {r.image_id for r in self._vms.values()}


def _saved(dom: _libvirt.Domain) -> bool:
    try:
        return dom.has_managed_save()
    except _libvirt.LibvirtError:
        return False


def _interfaces(xml: str) -> dict[str, ElementTree.Element]:
    """A domain's interfaces that have a MAC address, by the address in lower case."""
    found = {}
    for interface in ElementTree.fromstring(xml).iterfind("devices/interface"):
        mac = interface.find("mac")
        if mac is not None and mac.get("address"):
            found[str(mac.get("address")).lower()] = interface
    return found


def _alias(interface: ElementTree.Element) -> str:
    alias = interface.find("alias")
    return (alias.get("name") or "") if alias is not None else ""


def _is_port_nic(interface: ElementTree.Element) -> bool:
    """Whether an interface is a network port's NIC: a user alias and a port's tap."""
    target = interface.find("target")
    tap = (target.get("dev") or "") if target is not None else ""
    return _alias(interface).startswith("ua-") and tap.startswith("tap")


def _xml(element: ElementTree.Element) -> str:
    return ElementTree.tostring(element, encoding="unicode")


def _nics_json(nics: Sequence[_domain.NicSpec]) -> str:
    """The NICs annotation of `nics` (as the agent writes it)."""
    return json.dumps(
        [{"name": n.name, "portId": n.port_id, "macAddress": n.mac} for n in nics],
        separators=(",", ":"),
    )


def _wanted_size(
    rec: VmRecord,
    resources: cri.LinuxContainerResources | None,
    annotations: Mapping[str, str],
) -> tuple[int | None, int | None]:
    """(vCPUs, memory bytes) a resize asks for; None where it does not say."""
    text = annotations.get(VIRTUAL_MACHINE)
    if text:
        spec = _domain.VmSpec.parse(
            text, default_name=rec.config.metadata.name, image=rec.image_ref
        )
        return spec.vcpus, spec.memory
    if resources is None:
        return None, None
    vcpus = None
    if resources.cpu_quota > 0 and resources.cpu_period > 0:
        vcpus = max(1, -(-resources.cpu_quota // resources.cpu_period))
    memory = resources.memory_limit_in_bytes or None
    if memory is not None and memory < _vmresources.MIN_MEMORY:
        raise errors.InvalidArgument(
            f"VM memory {memory} bytes is below the minimum of {_vmresources.MIN_MEMORY}"
        )
    return vcpus, memory


def _qemu_img(*args: str) -> None:
    result = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise errors.Internal(f"qemu-img {args[0]} failed: {result.stderr.strip()}")
