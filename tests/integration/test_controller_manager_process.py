"""`arktos controller-manager` as its own process beside `arktos apiserver`: it reaches
the cluster only through the kubeconfig, and keeps working while the API server restarts
under it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import trio

from arktos_lite import client
from arktos_lite.api import errors, resources

pytestmark = pytest.mark.slow

READY_PREFIX = "arktos-lite is ready at "
REGISTRY = resources.Registry()
TENANTS = REGISTRY.get("", "v1", "tenants")
NAMESPACES = REGISTRY.get("", "v1", "namespaces")
assert TENANTS is not None
assert NAMESPACES is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def apiserver(data_dir: pathlib.Path, port: int) -> Iterator[pathlib.Path]:
    """`arktos apiserver` until the block ends; yields the kubeconfig it wrote."""
    log = (data_dir.parent / "apiserver.log").open("a")
    command = [sys.executable, "-m", "arktos_lite", "apiserver", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(READY_PREFIX), line
        yield pathlib.Path(line.split("; kubeconfig: ")[1].strip())
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def controller_manager(kubeconfig: pathlib.Path, log: pathlib.Path) -> Iterator[None]:
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "arktos_lite", "controller-manager"],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
    try:
        yield
        assert process.poll() is None, log.read_text()
    finally:
        stop(process)
    assert process.returncode == 0, log.read_text()


async def namespaces_of(api: client.Client, tenant: str) -> set[str]:
    listed = await api.list(NAMESPACES, tenant=tenant)
    return {item["metadata"]["name"] for item in listed["items"]}


async def converges(api: client.Client, tenant: str) -> None:
    with trio.fail_after(30):
        while True:
            if await namespaces_of(api, tenant) == {"default", "kube-system", "kube-public"}:
                return
            await trio.sleep(0.1)


def test_controller_manager_process_survives_an_api_server_restart(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    with contextlib.ExitStack() as first:
        kubeconfig = first.enter_context(apiserver(data_dir, port))
        manager = contextlib.ExitStack()
        manager.enter_context(controller_manager(kubeconfig, tmp_path / "controllers.log"))
        with manager:

            async def before() -> None:
                async with client.Client.from_kubeconfig(kubeconfig) as api:
                    await api.create(TENANTS, {"metadata": {"name": "before"}})
                    await converges(api, "before")

            trio.run(before)
            first.close()  # the API server goes away under the running controller manager
            time.sleep(1)
            with apiserver(data_dir, port) as again:
                assert again == kubeconfig

                async def after() -> None:
                    async with client.Client.from_kubeconfig(kubeconfig) as api:
                        await api.create(TENANTS, {"metadata": {"name": "after"}})
                        await converges(api, "after")
                        await api.delete(TENANTS, "before")
                        with trio.fail_after(30):
                            while True:
                                try:
                                    await api.get(TENANTS, "before")
                                except errors.NotFound:
                                    break
                                await trio.sleep(0.1)

                trio.run(after)
