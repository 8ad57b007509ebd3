"""The process runtime runs a pod's containers (and exec) in the network namespace its
sandbox names, and reports the sandbox's addresses (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from arktos_lite import runtime
from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import ProcessRuntimeConfig

from ..runtime._process import container_config, sandbox_config, serve

ADDRESS = "10.123.45.6"


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        reason = "network namespaces need root, ip and nsenter"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"arktos-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        host_end = f"vt{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name],
            check=True,
        )
        for argv in (
            ["addr", "add", f"{ADDRESS}/32", "dev", "eth0"],
            ["link", "set", "eth0", "up"],
        ):
            subprocess.run(["ip", "-n", name, *argv], check=True)
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cri-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("isolate", [False, True], ids=["plain", "isolated"])
async def test_containers_and_exec_run_in_the_sandboxs_netns(
    netns: str, tmp_path: Path, short_dir: Path, isolate: bool
) -> None:
    config = ProcessRuntimeConfig(
        root_dir=tmp_path / "runtime", socket_path=short_dir / "cri.sock", isolate=isolate
    )
    async with trio.open_nursery() as nursery:
        served = await serve(nursery, config)
        client = RuntimeClient(f"unix://{config.socket_path}")
        try:
            status = await client.status(verbose=True)
            assert status.info[runtime.POD_NETWORK_INFO] == "true"
            sb = sandbox_config(
                "pod",
                tmp_path / "logs",
                annotations={runtime.POD_NETNS: netns, runtime.POD_IPS: ADDRESS},
                linux=cri.LinuxPodSandboxConfig(
                    security_context=cri.LinuxSandboxSecurityContext(
                        namespace_options=cri.NamespaceOption(network=cri.POD)
                    )
                ),
            )
            sid = await client.run_pod_sandbox(sb)
            sandbox = await client.pod_sandbox_status(sid)
            assert sandbox.network.ip == ADDRESS
            assert sandbox.linux.namespaces.options.network == cri.POD
            # The container's own view of its interfaces, written to its log.
            cid = await client.create_container(
                sid, container_config("c", ["sh", "-c", "ip -o addr; sleep 30"]), sb
            )
            await client.start_container(cid)
            log = tmp_path / "logs" / "c" / "0.log"
            with trio.fail_after(5):
                while ADDRESS not in (log.read_text() if log.exists() else ""):  # noqa: ASYNC110
                    await trio.sleep(0.02)
            result = await client.exec_sync(cid, ["ip", "-o", "addr"], timeout=5)
            assert result.exit_code == 0
            assert ADDRESS in result.stdout.decode()
            await client.remove_pod_sandbox(sid)
        finally:
            await client.aclose()
            await served.stop()


async def test_without_the_annotation_pods_share_the_node(tmp_path: Path, short_dir: Path) -> None:
    config = ProcessRuntimeConfig(
        root_dir=tmp_path / "runtime", socket_path=short_dir / "cri.sock", isolate=False
    )
    async with trio.open_nursery() as nursery:
        served = await serve(nursery, config)
        client = RuntimeClient(f"unix://{config.socket_path}")
        try:
            sid = await client.run_pod_sandbox(sandbox_config("pod", tmp_path / "logs"))
            sandbox = await client.pod_sandbox_status(sid)
            assert sandbox.network.ip == config.host_ip
            assert sandbox.linux.namespaces.options.network == cri.NODE
            await client.remove_pod_sandbox(sid)
        finally:
            await client.aclose()
            await served.stop()
