"""`ProcessRuntime`: the embedded CRI runtime, a gRPC server on a unix socket in-process.

`run()` loads the state under `root_dir` (adopting containers a previous runtime left
running), starts the exec streaming server and the gRPC server, and reports the socket
path once it serves. Cancelling it stops serving (with a short grace for calls in flight)
but leaves every container running: the agent decides whether pods stop with it.
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
from arktos_lite.runtime.process._config import ProcessRuntimeConfig
from arktos_lite.runtime.process._servicer import ImageServicer, RuntimeServicer
from arktos_lite.runtime.process._streaming import StreamingServer
from arktos_lite.runtime.process._supervisor import Supervisor

log = logging.getLogger(__name__)

_GRACE = 1.0
_WORKERS = 64
# Longest unix socket path the kernel accepts (sun_path minus its NUL).
_MAX_SOCKET_PATH = 107


class ProcessRuntime:
    """The process runtime (see the module docstring); `supervisor` holds its state."""

    def __init__(self, config: ProcessRuntimeConfig) -> None:
        self.config = config
        self.supervisor = Supervisor(config)
        # The exec streaming server's base URL while serving.
        self.streaming_url: str | None = None

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
        await trio.to_thread.run_sync(self.supervisor.start)
        try:
            async with trio.open_nursery() as nursery:
                runtime_servicer = RuntimeServicer(self.supervisor)
                streaming = StreamingServer(
                    self.supervisor,
                    host=self.config.streaming_host,
                    port=self.config.streaming_port,
                )
                self.streaming_url = await nursery.start(streaming.run)
                runtime_servicer.exec_url = streaming.prepare_exec
                server = await trio.to_thread.run_sync(
                    self._serve, runtime_servicer, ImageServicer(self.supervisor)
                )
                try:
                    log.info(
                        "process runtime serving CRI on %s (isolation: %s)",
                        socket_path,
                        self.supervisor.isolation.description,
                    )
                    task_status.started(socket_path)
                    await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(lambda: server.stop(_GRACE).wait())
                        with contextlib.suppress(FileNotFoundError):
                            socket_path.unlink()
                    log.info("process runtime stopped serving %s", socket_path)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.supervisor.close)

    def _serve(self, runtime: RuntimeServicer, images: ImageServicer) -> grpc.Server:
        path = self.config.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A socket file left by a runtime that died would make the bind fail.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = grpc.server(
            # StopContainer holds a worker for up to the grace period; with many pods
            # stopping at once, the relists of the agent must still get a thread.
            futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="cri"),
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ],
        )
        # Referenced, not called, so this stays typed whether or not the stubs are.
        register: list[tuple[Callable[[Any, grpc.Server], None], object]] = [
            (api_pb2_grpc.add_RuntimeServiceServicer_to_server, runtime),
            (api_pb2_grpc.add_ImageServiceServicer_to_server, images),
        ]
        for add, servicer in register:
            add(servicer, server)
        if server.add_insecure_port(f"unix:{path}") == 0:
            raise OSError(f"cannot listen on unix socket {path}")
        server.start()
        return server
