"""`VmRuntime`: the VM runtime, a CRI gRPC server on a unix socket backed by libvirt.

`run()` opens libvirt (its event loop in a thread of its own, registered first), loads the
records under `root_dir`, starts the gRPC server and reports the socket path once it
serves. Every libvirt call happens in a worker thread (gRPC's handler threads, or
`trio.to_thread` for start and close), never in trio's. Cancelling `run()` stops serving
(with a short grace for calls in flight) but leaves every VM running: the agent decides
whether pods stop with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import trio

from arktos_lite.runtime.cri import api_pb2_grpc
from arktos_lite.runtime.vm import _libvirt
from arktos_lite.runtime.vm._config import VmRuntimeConfig
from arktos_lite.runtime.vm._manager import VmManager
from arktos_lite.runtime.vm._servicer import ImageServicer, RuntimeServicer

log = logging.getLogger(__name__)

_GRACE = 1.0
_WORKERS = 32
_MAX_SOCKET_PATH = 107


def libvirt_missing() -> str | None:
    """None when the VM runtime can run here (libvirt-python importable), else why not."""
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
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"unix socket path too long ({len(str(socket_path))} bytes): {socket_path}"
            )
        missing = libvirt_missing()
        if missing is not None:
            raise RuntimeError(f"the VM runtime needs libvirt: {missing}")
        await trio.to_thread.run_sync(self.manager.start)
        try:
            server = await trio.to_thread.run_sync(self._serve)
            try:
                log.info(
                    "VM runtime serving CRI on %s (libvirt %s)",
                    socket_path,
                    self.config.libvirt_uri,
                )
                task_status.started(socket_path)
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(lambda: server.stop(_GRACE).wait())
                    with contextlib.suppress(FileNotFoundError):
                        socket_path.unlink()
                log.info("VM runtime stopped serving %s", socket_path)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.manager.close)

    def _serve(self) -> grpc.Server:
        path = self.config.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A socket file left by a runtime that died would make the bind fail.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = grpc.server(
            # StopContainer and a delayed RebootVM hold a worker for their whole wait.
            futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="vm-cri"),
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ],
        )
        register: list[tuple[Callable[[Any, grpc.Server], None], object]] = [
            (api_pb2_grpc.add_RuntimeServiceServicer_to_server, RuntimeServicer(self.manager)),
            (api_pb2_grpc.add_ImageServiceServicer_to_server, ImageServicer(self.manager)),
        ]
        for add, servicer in register:
            add(servicer, server)
        if server.add_insecure_port(f"unix:{path}") == 0:
            raise OSError(f"cannot listen on unix socket {path}")
        server.start()
        return server
