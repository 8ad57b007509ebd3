"""The node of `arktos up` runs the VM runtime by default only where it can: without
libvirt (or QEMU), or when the runtime fails to start, the node comes up with its
container runtime alone and reports `VmRuntimeReady=False`; a VM runtime asked for by
URI that cannot start stops the agent instead."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import pytest
import trio

from arktos_lite import agent, client, cluster
from arktos_lite.api import resources
from arktos_lite.runtime import vm

from ._server import ADMIN_TOKEN, Server

NODES = resources.Registry().get("", "v1", "nodes")
assert NODES is not None


@pytest.fixture
async def api() -> AsyncIterator[client.Client]:
    async with Server.open() as server:
        config = client.Config(server=server.url, token=ADMIN_TOKEN)
        async with client.Client(config) as connected:
            yield connected


def options(root: pathlib.Path, **vm_options: Any) -> cluster.AgentOptions:
    config = agent.AgentConfig(node_name="n1", root_dir=root, port=0)
    return cluster.AgentOptions(config, **vm_options)


async def conditions(api: client.Client) -> dict[str, dict[str, Any]]:
    assert NODES is not None
    node = await api.get(NODES, "n1")
    return {c["type"]: c for c in node.get("status", {}).get("conditions") or ()}


async def fail_to_start(_self: vm.VmRuntime, **_: Any) -> NoReturn:
    await trio.lowlevel.checkpoint()
    raise RuntimeError("cannot open libvirt qemu:///embed: no QEMU driver")


async def test_without_libvirt_the_node_runs_without_a_vm_runtime(
    api: client.Client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "default_vm_runtime_missing", lambda: "no libvirt here")
    async with trio.open_nursery() as nursery:
        run = functools.partial(
            cluster.run_agent, api, options=options(tmp_path, default_vm_runtime=True)
        )
        await nursery.start(run)
        found = await conditions(api)
        assert found["ContainerRuntimeReady"]["status"] == "True"
        assert (found["VmRuntimeReady"]["status"], found["VmRuntimeReady"]["reason"]) == (
            "False",
            "NoRuntime",
        )
        assert found["VmRuntimeReady"]["message"] == "no vm runtime on this node: no libvirt here"
        assert not (tmp_path / "vm.sock").exists()
        nursery.cancel_scope.cancel()


async def test_a_default_vm_runtime_that_fails_to_start_is_left_out(
    api: client.Client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "default_vm_runtime_missing", lambda: None)
    monkeypatch.setattr(vm.VmRuntime, "run", fail_to_start)
    async with trio.open_nursery() as nursery:
        run = functools.partial(
            cluster.run_agent, api, options=options(tmp_path, default_vm_runtime=True)
        )
        await nursery.start(run)
        found = await conditions(api)
        assert found["Ready"]["status"] == "True"
        assert found["VmRuntimeReady"]["status"] == "False"
        assert "it did not start: cannot open libvirt" in found["VmRuntimeReady"]["message"]
        nursery.cancel_scope.cancel()


async def test_a_vm_runtime_asked_for_that_fails_to_start_stops_the_agent(
    api: client.Client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vm.VmRuntime, "run", fail_to_start)
    run = functools.partial(
        cluster.run_agent, api, options=options(tmp_path, vm_runtime_uri="qemu:///embed?root=/x")
    )
    failed = pytest.RaisesExc(RuntimeError, match="no QEMU driver")
    with pytest.RaisesGroup(failed, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(run)
