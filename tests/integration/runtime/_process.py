"""Helpers for the process runtime tests: a served runtime, a client, CRI configs."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import ProcessRuntime, ProcessRuntimeConfig


@dataclasses.dataclass
class Served:
    """One running ProcessRuntime that a test can stop (as an agent restart would)."""

    runtime: ProcessRuntime
    scope: trio.CancelScope
    done: trio.Event

    async def stop(self) -> None:
        self.scope.cancel()
        await self.done.wait()


async def serve(nursery: trio.Nursery, config: ProcessRuntimeConfig) -> Served:
    runtime = ProcessRuntime(config)
    done = trio.Event()

    async def run(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        try:
            async with trio.open_nursery() as inner:
                await inner.start(runtime.run)
                task_status.started(inner.cancel_scope)
        finally:
            done.set()

    scope = await nursery.start(run)
    return Served(runtime, scope, done)


@dataclasses.dataclass
class Env:
    """What a test gets: a served runtime, a client, and where things live."""

    nursery: trio.Nursery
    config: ProcessRuntimeConfig
    served: Served
    client: RuntimeClient
    tmp: Path

    @property
    def supervisor(self) -> Any:
        return self.served.runtime.supervisor

    async def sandbox(self, name: str = "pod", **config: Any) -> tuple[str, cri.PodSandboxConfig]:
        sb = sandbox_config(name, self.tmp / "pods" / name / "logs", **config)
        return await self.client.run_pod_sandbox(sb), sb

    async def container(
        self,
        sandbox: tuple[str, cri.PodSandboxConfig],
        command: list[str],
        *,
        name: str = "c",
        start: bool = True,
        **config: Any,
    ) -> str:
        sid, sb = sandbox
        cid = await self.client.create_container(sid, container_config(name, command, **config), sb)
        if start:
            await self.client.start_container(cid)
        return cid

    async def wait_state(self, cid: str, state: int, within: float = 5.0) -> cri.ContainerStatus:
        with trio.fail_after(within):
            while True:
                status = await self.client.container_status(cid)
                if status.state == state:
                    return status
                await trio.sleep(0.02)

    def log_lines(self, cid: str) -> list[str]:
        path = Path(self.supervisor.container_status(cid).log_path)
        return path.read_text().splitlines() if path.exists() else []

    async def wait_log(self, cid: str, predicate: Callable[[list[str]], bool]) -> list[str]:
        with trio.fail_after(5):
            while not predicate(lines := self.log_lines(cid)):  # noqa: ASYNC110 (polls a file)
                await trio.sleep(0.02)
        return lines


def sandbox_config(name: str, log_dir: Path, **extra: Any) -> cri.PodSandboxConfig:
    uid = str(uuid.uuid4())
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
        hostname=extra.pop("hostname", name),
        log_directory=str(log_dir),
        labels={
            "io.kubernetes.pod.name": name,
            "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.uid": uid,
            **extra.pop("labels", {}),
        },
        **extra,
    )


def container_config(name: str, command: list[str], **extra: Any) -> cri.ContainerConfig:
    envs = extra.pop("envs", {})
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name, attempt=0),
        image=cri.ImageSpec(image=extra.pop("image", "busybox")),
        command=command,
        envs=[cri.KeyValue(key=k, value=v) for k, v in envs.items()],
        log_path=f"{name}/0.log",
        labels={"io.kubernetes.container.name": name, **extra.pop("labels", {})},
        **extra,
    )
