"""What the benchmark groups that drive a real cluster share: `arktos` subprocesses on a
fresh data dir and a free port, objects created with concurrent requests, CPU seconds."""

from __future__ import annotations

import contextlib
import os
import pathlib
import resource
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import trio

from arktos_lite import client
from arktos_lite.api import resources

ARKTOS = (sys.executable, "-m", "arktos_lite")
READY_PREFIX = "arktos-lite is ready at "
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CREATE_CONCURRENCY = 32


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a grace period, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def arktos(
    workdir: pathlib.Path, command: str, *extra: str
) -> Iterator[tuple[subprocess.Popen[bytes], pathlib.Path]]:
    """`arktos <command> ...` on a fresh data dir and a free port, until the block ends;
    yields the process and the kubeconfig it wrote. Its log is `workdir/<command>.log`."""
    data_dir = workdir / command
    data_dir.mkdir(parents=True)
    log = workdir / f"{command}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*ARKTOS, command, *extra, "--data-dir", str(data_dir), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    assert process.stdout is not None
    try:
        readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        line = process.stdout.readline().decode() if readable else ""
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"arktos {command} did not start; see {log}")
        yield process, pathlib.Path(line.split("; kubeconfig: ")[1].strip())
    finally:
        stop(process)
        process.stdout.close()


async def create_all(
    api: client.Client, objects: list[tuple[resources.Resource, dict[str, Any]]]
) -> None:
    """Create `objects` with `CREATE_CONCURRENCY` requests at a time."""
    send, receive = trio.open_memory_channel[tuple[resources.Resource, dict[str, Any]]](
        len(objects)
    )
    for item in objects:
        send.send_nowait(item)
    send.close()

    async def worker() -> None:
        async for kind, obj in receive:
            await api.create(kind, obj)

    async with trio.open_nursery() as nursery:
        for _ in range(CREATE_CONCURRENCY):
            nursery.start_soon(worker)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def own_cpu() -> float:
    """User + system CPU seconds of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
