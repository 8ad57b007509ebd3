"""A typed face on libvirt-python (which ships no type hints): the few calls the runtime makes.

Guarantees:

* libvirt's default event loop is registered once per process, before the first
  connection is opened, and run by a daemon thread of its own (the embedded QEMU driver
  needs it to notice guests and monitors). libvirt's own error printing is routed to this
  module's logger at DEBUG instead of stderr.
* Every failure is a `LibvirtError` carrying libvirt's error code, so callers can tell
  "no such domain" and "no such snapshot" from real failures without reading messages.
* Every call blocks: call it from a worker thread, never from trio's.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib import parse

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# virErrorNumber values the runtime acts on.
ERR_NO_DOMAIN = 42
ERR_NO_DOMAIN_SNAPSHOT = 72
ERR_OPERATION_INVALID = 55
ERR_INVALID_ARG = 8
# virDomainModificationImpact
_AFFECT_LIVE = 1
_AFFECT_CONFIG = 2
# virDomainVcpuFlags
_VCPU_MAXIMUM = 4
# virDomainXMLFlags: the persistent configuration rather than the running domain.
_XML_INACTIVE = 2
# virDomainSaveRestoreFlags: the restored domain runs, even if it was saved paused.
_SAVE_RUNNING = 2
# virDomainUndefineFlagsValues
_UNDEFINE_MANAGED_SAVE = 1
_UNDEFINE_SNAPSHOTS_METADATA = 2
_UNDEFINE_NVRAM = 4


class DomainState(enum.IntEnum):
    """virDomainState."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4  # being shut down
    SHUTOFF = 5
    CRASHED = 6
    PMSUSPENDED = 7


class ShutoffReason(enum.IntEnum):
    """virDomainShutoffReason."""

    UNKNOWN = 0
    SHUTDOWN = 1
    DESTROYED = 2
    CRASHED = 3
    MIGRATED = 4
    SAVED = 5
    FAILED = 6
    FROM_SNAPSHOT = 7
    DAEMON = 8


class LibvirtError(Exception):
    """A libvirt call failed; `code` is libvirt's virErrorNumber."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def available() -> str | None:
    """None when libvirt-python is installed, else why not.

    It finds the modules without importing them: the import loads libvirt and the
    libraries it links (~15 MB resident), which a runtime with no VM yet does without. A
    module that is there but does not load fails the first connection instead."""
    for name in ("libvirt", "libvirtmod"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            return f"libvirt-python is not installed (No module named {name!r})"
    return None


@functools.cache
def _module() -> Any:
    # libvirt's own log would go to stderr, and the embedded QEMU driver writes benign
    # notices there on every start (the "none" security driver, dmidecode without
    # /dev/mem). Failures reach the caller as exceptions and the error handler's debug log,
    # so its log is off unless LIBVIRT_LOG_OUTPUTS says otherwise.
    os.environ.setdefault("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null")
    import libvirt  # type: ignore[import-untyped]

    return libvirt


# Cached: libvirt's event implementation is process-wide and may be registered only once.
@functools.cache
def _event_loop() -> None:
    lv = _module()

    def quiet(_ctx: object, err: Any) -> None:
        log.debug("libvirt: %s", err[2] if isinstance(err, tuple) and len(err) > 2 else err)

    lv.registerErrorHandler(quiet, None)
    lv.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            if lv.virEventRunDefaultImpl() < 0:
                log.warning("libvirt's event loop failed an iteration")

    threading.Thread(target=run, name="libvirt-events", daemon=True).start()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    lv = _module()
    try:
        yield
    except lv.libvirtError as e:
        raise LibvirtError(str(e.get_error_message() or e), code=int(e.get_error_code())) from e


def _call(fn: Callable[[], _T]) -> _T:
    with _translated():
        return fn()


def fork_safe() -> bool:
    """True when gRPC's fork support is off: libvirt's fork()ed helpers (the QEMU
    capability probe, every QEMU start) then survive in a process that serves gRPC.
    gRPC reads the variable when it is imported, so it must be set before that."""
    return os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").lower() in ("0", "false", "no")


def prepare_embed(uri: str) -> None:
    """Write the qemu.conf an embedded QEMU driver needs when running as root (once)."""
    parsed = parse.urlsplit(uri)
    if parsed.scheme != "qemu" or parsed.path != "/embed":
        return
    root = dict(parse.parse_qsl(parsed.query)).get("root")
    if not root:
        return
    conf = Path(root) / "etc" / "qemu.conf"
    if conf.exists():
        return
    conf.parent.mkdir(parents=True, exist_ok=True)
    # Root's guests: no dynamic ownership or security driver (no libvirt-qemu user needed),
    # and serial output straight into files (no virtlogd daemon).
    conf.write_text(
        'user = "root"\ngroup = "root"\ndynamic_ownership = 0\n'
        'security_driver = "none"\nstdio_handler = "file"\n'
    )


class Domain:
    """One libvirt domain."""

    def __init__(self, dom: Any) -> None:
        self._dom = dom

    @property
    def uuid(self) -> str:
        return str(_call(self._dom.UUIDString))

    @property
    def name(self) -> str:
        return str(_call(self._dom.name))

    def state(self) -> tuple[DomainState, int]:
        state, reason = _call(self._dom.state)
        try:
            return DomainState(int(state)), int(reason)
        except ValueError:
            return DomainState.NOSTATE, int(reason)

    def create(self) -> None:
        _call(self._dom.create)

    def shutdown(self) -> None:
        _call(self._dom.shutdown)

    def destroy(self) -> None:
        _call(self._dom.destroy)

    def reboot(self, flags: int = 0) -> None:
        _call(lambda: self._dom.reboot(flags))

    def suspend(self) -> None:
        _call(self._dom.suspend)

    def resume(self) -> None:
        _call(self._dom.resume)

    def managed_save(self) -> None:
        """Save the memory to libvirt's managed save file and stop (`create` restores it)."""
        _call(lambda: self._dom.managedSave(_SAVE_RUNNING))

    def has_managed_save(self) -> bool:
        return bool(_call(lambda: self._dom.hasManagedSaveImage(0)))

    def remove_managed_save(self) -> None:
        _call(lambda: self._dom.managedSaveRemove(0))

    def sizes(self) -> tuple[int, int, int, int]:
        """(vCPUs, maximum vCPUs, memory, maximum memory), memory in bytes: the running
        domain's when it runs, else its configuration's."""

        def read() -> tuple[int, int, int, int]:
            _state, max_kib, kib, vcpus, _cpu_time = self._dom.info()
            max_vcpus = self._dom.vcpusFlags(_VCPU_MAXIMUM | _AFFECT_CONFIG)
            return int(vcpus), int(max_vcpus), int(kib) * 1024, int(max_kib) * 1024

        return _call(read)

    def set_vcpus(self, count: int, *, live: bool) -> None:
        """Hot-plug (or unplug) vCPUs when `live`, and keep the count in the config."""
        if live:
            _call(lambda: self._dom.setVcpusFlags(count, _AFFECT_LIVE))
        _call(lambda: self._dom.setVcpusFlags(count, _AFFECT_CONFIG))

    def set_memory(self, size: int, *, live: bool) -> None:
        """Balloon the memory to `size` bytes when `live`, and keep it in the config."""
        kib = max(1, size // 1024)
        # One flag at a time: some drivers (the test driver) refuse both at once.
        if live:
            _call(lambda: self._dom.setMemoryFlags(kib, _AFFECT_LIVE))
        _call(lambda: self._dom.setMemoryFlags(kib, _AFFECT_CONFIG))

    def xml(self, *, inactive: bool = False) -> str:
        """The domain's XML: the running domain's (its config's when it is off), or with
        `inactive` its persistent config's."""
        return str(_call(lambda: self._dom.XMLDesc(_XML_INACTIVE if inactive else 0)))

    def attach_device(self, xml: str, *, live: bool, config: bool) -> None:
        """Add a device to the running domain (`live`) and to the config (`config`)."""
        # One flag at a time, live first: a device the running domain refused is not
        # left behind in the config.
        if live:
            _call(lambda: self._dom.attachDeviceFlags(xml, _AFFECT_LIVE))
        if config:
            _call(lambda: self._dom.attachDeviceFlags(xml, _AFFECT_CONFIG))

    def detach_device(self, xml: str, *, live: bool, config: bool) -> None:
        """Remove a device from the running domain (`live`) and from the config (`config`).
        A live detach asks the guest and waits a few seconds for it to let go (the device
        goes whenever it does)."""
        if live:
            _call(lambda: self._dom.detachDeviceFlags(xml, _AFFECT_LIVE))
        if config:
            _call(lambda: self._dom.detachDeviceFlags(xml, _AFFECT_CONFIG))

    def detach_alias(self, alias: str, *, live: bool, config: bool) -> None:
        """Remove the device with this alias, as `detach_device`, but without waiting for
        the guest: the running domain loses it once the guest lets go of it."""
        flags = (_AFFECT_LIVE if live else 0) | (_AFFECT_CONFIG if config else 0)
        if flags:
            _call(lambda: self._dom.detachDeviceAlias(alias, flags))

    def snapshot_names(self) -> list[str]:
        return [str(n) for n in _call(lambda: self._dom.snapshotListNames(0))]

    def create_snapshot(self, xml: str) -> None:
        _call(lambda: self._dom.snapshotCreateXML(xml, 0))

    def revert_to_snapshot(self, name: str, flags: int = 0) -> None:
        def revert() -> None:
            snapshot = self._dom.snapshotLookupByName(name, 0)
            self._dom.revertToSnapshot(snapshot, flags)

        _call(revert)

    def undefine(self) -> None:
        flags = _UNDEFINE_SNAPSHOTS_METADATA | _UNDEFINE_MANAGED_SAVE | _UNDEFINE_NVRAM
        try:
            _call(lambda: self._dom.undefineFlags(flags))
        except LibvirtError as e:
            if e.code == ERR_NO_DOMAIN:
                return
            # Drivers without NVRAM support reject the flag: try with the essential ones.
            _call(
                lambda: self._dom.undefineFlags(
                    _UNDEFINE_SNAPSHOTS_METADATA | _UNDEFINE_MANAGED_SAVE
                )
            )


class Connection:
    """An open libvirt connection. Thread-safe (libvirt's connections are)."""

    def __init__(self, conn: Any, uri: str) -> None:
        self._conn = conn
        self.uri = uri

    @classmethod
    def open(cls, uri: str) -> Connection:
        if not uri.startswith("test:") and not fork_safe():
            log.warning(
                "libvirt forks to start QEMU, and gRPC's fork handlers abort such children "
                "(the domain fails with 'unexpected fatal signal 6'): set "
                "GRPC_ENABLE_FORK_SUPPORT=false in the environment before grpc is imported"
            )
        _event_loop()
        prepare_embed(uri)
        lv = _module()
        return cls(_call(lambda: lv.open(uri)), uri)

    @property
    def driver(self) -> str:
        """The hypervisor driver's name, e.g. "QEMU" or "TEST"."""
        return str(_call(self._conn.getType))

    def alive(self) -> bool:
        try:
            return bool(_call(self._conn.isAlive))
        except LibvirtError:
            return False

    def version(self) -> str:
        lv = _module()
        number = int(_call(lv.getVersion))
        return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"

    def define(self, xml: str) -> Domain:
        return Domain(_call(lambda: self._conn.defineXML(xml)))

    def lookup(self, name: str) -> Domain | None:
        try:
            return Domain(_call(lambda: self._conn.lookupByName(name)))
        except LibvirtError as e:
            if e.code == ERR_NO_DOMAIN:
                return None
            raise

    def domain_names(self) -> list[str]:
        return [str(d.name()) for d in _call(lambda: self._conn.listAllDomains(0))]

    def close(self) -> None:
        with contextlib.suppress(LibvirtError):
            _call(self._conn.close)
