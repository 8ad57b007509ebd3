"""`ProcessRuntime`: the embedded CRI runtime, a gRPC server on a unix socket in-process.

`run()` loads the state under `root_dir` (adopting containers a previous runtime left
running), starts the exec streaming server and the gRPC server, and reports the socket
path once it serves. Cancelling it stops serving (with a short grace for calls in flight)
but leaves every container running: the agent decides whether pods stop with it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio

from arktos_lite.runtime import _servicer as servicer_
from arktos_lite.runtime.process._config import ProcessRuntimeConfig
from arktos_lite.runtime.process._servicer import ImageServicer, RuntimeServicer
from arktos_lite.runtime.process._streaming import StreamingServer
from arktos_lite.runtime.process._supervisor import Supervisor

log = logging.getLogger(__name__)

_WORKERS = 64


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
                async with servicer_.serving(
                    socket_path,
                    runtime=runtime_servicer,
                    images=ImageServicer(self.supervisor),
                    # StopContainer holds a worker for up to the grace period; with many
                    # pods stopping at once, the relists of the agent must still get one.
                    workers=_WORKERS,
                    thread_name="cri",
                ):
                    log.info(
                        "process runtime serving CRI on %s (isolation: %s)",
                        socket_path,
                        self.supervisor.isolation.description,
                    )
                    task_status.started(socket_path)
                    try:
                        await trio.sleep_forever()
                    finally:
                        log.info("process runtime stopped serving %s", socket_path)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.supervisor.close)
