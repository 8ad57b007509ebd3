"""`VmRuntime`: the VM runtime, a CRI gRPC server on a unix socket backed by libvirt.

`run()` loads the records under `root_dir`, opens libvirt (its event loop in a thread of
its own, registered first; with `connect_on_demand` and no VM yet, the first call that
needs it does), starts the gRPC server and reports the socket path once it serves. Every
libvirt call happens in a worker thread (gRPC's handler threads, or `trio.to_thread` for
start and close), never in trio's. Cancelling `run()` stops serving (with a short grace
for calls in flight) but leaves every VM running: the agent decides whether pods stop
with it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio

from arktos_lite.runtime import _servicer as servicer_
from arktos_lite.runtime.vm import _libvirt
from arktos_lite.runtime.vm._config import VmRuntimeConfig
from arktos_lite.runtime.vm._manager import VmManager
from arktos_lite.runtime.vm._servicer import ImageServicer, RuntimeServicer

log = logging.getLogger(__name__)

_WORKERS = 32


def libvirt_missing() -> str | None:
    """None when the VM runtime can run here (libvirt-python installed), else why not."""
    return _libvirt.available()


class VmRuntime:
    """The VM runtime (see the module docstring); `manager` holds its state."""

    def __init__(self, config: VmRuntimeConfig) -> None:
        self.config = config
        self.manager = VmManager(config)

    @property
    def endpoint(self) -> str:
        """The address a `RuntimeClient` connects to."""
        return f"unix://{self.config.socket_path}"

    async def run(self, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
        socket_path = self.config.socket_path
        missing = libvirt_missing()
        if missing is not None:
            raise RuntimeError(f"the VM runtime needs libvirt: {missing}")
        await trio.to_thread.run_sync(self.manager.start)
        try:
            async with servicer_.serving(
                socket_path,
                runtime=RuntimeServicer(self.manager),
                images=ImageServicer(self.manager),
                # StopContainer and a delayed RebootVM hold a worker for their whole wait.
                workers=_WORKERS,
                thread_name="vm-cri",
            ):
                log.info(
                    "VM runtime serving CRI on %s (libvirt %s)",
                    socket_path,
                    self.config.libvirt_uri,
                )
                task_status.started(socket_path)
                try:
                    await trio.sleep_forever()
                finally:
                    log.info("VM runtime stopped serving %s", socket_path)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.manager.close)
