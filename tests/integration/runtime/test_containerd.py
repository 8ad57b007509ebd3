"""The CRI lifecycle the agent drives, against a real containerd + runc through RuntimeClient.

What a user of `--runtime-endpoint …,container,unix:///run/containerd/containerd.sock`
relies on: the imported busybox image is found, a host-network pod runs, its container
logs in the CRI format, exec works with exit codes, stop and exit codes are reported as
kubelet expects, and removing everything leaves no process behind.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
import trio

from arktos_lite import runtime
from arktos_lite.runtime import _oci
from arktos_lite.runtime.cri import api_pb2 as cri

from . import _containerd

pytestmark = pytest.mark.slow

# A CRI log line: <RFC3339Nano> <stream> <F|P> <text>
CRI_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP] "
)


@pytest.fixture
async def client(containerd: _containerd.Containerd) -> AsyncIterator[runtime.RuntimeClient]:
    async with runtime.RuntimeClient.connect(containerd.endpoint) as client:
        yield client


def sandbox_config(log_directory: Path, *, name: str = "pod") -> cri.PodSandboxConfig:
    uid = str(uuid.uuid4())
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
        log_directory=str(log_directory),
        labels={
            "io.kubernetes.pod.name": name,
            "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.uid": uid,
            "io.kubernetes.pod.tenant": "system",
        },
        # Host networking: this containerd has no CNI config, and needs none for it. No
        # hostname either: runc refuses to set one without a private UTS namespace.
        linux=cri.LinuxPodSandboxConfig(
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NamespaceMode.NODE)
            )
        ),
    )


def container_config(name: str, command: Sequence[str]) -> cri.ContainerConfig:
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name, attempt=0),
        image=cri.ImageSpec(image="busybox"),
        command=list(command),
        log_path=f"{name}/0.log",
        labels={"io.kubernetes.container.name": name},
    )


async def wait_for_state(
    client: runtime.RuntimeClient, container_id: str, state: cri.ContainerState
) -> cri.ContainerStatus:
    with trio.fail_after(10):
        while True:
            status = await client.container_status(container_id)
            if status.state == state:
                return status
            await trio.sleep(0.05)


async def until(check: Callable[[], bool]) -> None:
    with trio.fail_after(5):
        while True:
            if check():
                return
            await trio.sleep(0.05)


async def test_version_and_status(client: runtime.RuntimeClient) -> None:
    version = await client.version()
    assert version.runtime_name == "containerd"
    assert version.runtime_api_version == "v1"
    status = await client.status()
    conditions = {c.type: c.status for c in status.status.conditions}
    assert conditions["RuntimeReady"] is True


async def test_imported_busybox_is_found_without_a_registry(
    client: runtime.RuntimeClient, containerd: _containerd.Containerd, tmp_path: Path
) -> None:
    image = await client.image_status("busybox")
    assert image is not None
    assert _containerd.BUSYBOX_IMAGE in image.repo_tags
    assert image.id.startswith("sha256:")
    assert await client.image_status("docker.io/library/not-imported:1.0") is None
    # The very image the builder wrote: a rebuild gives the same digests, so it is
    # deterministic and containerd would see it as already present.
    rebuilt = _oci.build_image(
        tmp_path / "busybox.tar",
        name=_containerd.BUSYBOX_IMAGE,
        busybox=_containerd.BUSYBOX,
        cmd=["sh"],
    )
    assert image.id == rebuilt.config_digest
    assert rebuilt.manifest_digest in containerd.ctr("images", "ls").stdout
    tags = {tag for image in await client.list_images() for tag in image.repo_tags}
    assert {_containerd.BUSYBOX_IMAGE, _containerd.PAUSE_IMAGE} <= tags


async def test_pod_lifecycle(
    client: runtime.RuntimeClient, containerd: _containerd.Containerd, tmp_path: Path
) -> None:
    sandbox = sandbox_config(tmp_path / "logs")
    sandbox_id = await client.run_pod_sandbox(sandbox)
    assert (await client.pod_sandbox_status(sandbox_id)).state == cri.SANDBOX_READY

    container_id = await client.create_container(
        sandbox_id, container_config("main", ["sh", "-c", "echo hello; sleep 30"]), sandbox
    )
    await client.start_container(container_id)
    status = await wait_for_state(client, container_id, cri.CONTAINER_RUNNING)
    assert status.image.image == _containerd.BUSYBOX_IMAGE
    busybox = await client.image_status("busybox")
    assert busybox is not None
    assert status.image_ref == busybox.id

    log = tmp_path / "logs" / "main" / "0.log"
    await until(lambda: log.exists() and "hello" in log.read_text())
    (line,) = log.read_text().splitlines()
    assert CRI_LOG_LINE.match(line), line
    assert line.endswith(" stdout F hello")

    hi = await client.exec_sync(container_id, ["echo", "hi"], timeout=10)
    assert (hi.stdout, hi.exit_code) == (b"hi\n", 0)
    failed = await client.exec_sync(container_id, ["sh", "-c", "echo oops >&2; exit 3"], timeout=10)
    assert (failed.stderr, failed.exit_code) == (b"oops\n", 3)

    url = await client.exec(
        cri.ExecRequest(container_id=container_id, cmd=["sh"], stdin=True, stdout=True)
    )
    assert url.startswith("http://127.0.0.1:")

    assert containerd.workload_pids(), "the container's processes run under the shim"
    await client.stop_container(container_id, timeout=2)
    stopped = await client.container_status(container_id)
    assert stopped.state == cri.CONTAINER_EXITED
    assert stopped.exit_code in (128 + 9, 128 + 15)
    assert stopped.finished_at >= stopped.started_at > 0

    await client.remove_container(container_id)
    with pytest.raises(runtime.NotFound):
        await client.container_status(container_id)
    await client.stop_pod_sandbox(sandbox_id)
    assert (await client.pod_sandbox_status(sandbox_id)).state == cri.SANDBOX_NOTREADY
    await client.remove_pod_sandbox(sandbox_id)
    assert sandbox_id not in {s.id for s in await client.list_pod_sandbox()}
    await until(lambda: not containerd.workload_pids())


@pytest.mark.parametrize(
    ("script", "exit_code", "reason"), [("exit 3", 3, "Error"), ("true", 0, "Completed")]
)
async def test_container_that_exits_by_itself(
    client: runtime.RuntimeClient, tmp_path: Path, script: str, exit_code: int, reason: str
) -> None:
    sandbox = sandbox_config(tmp_path / "logs", name="exits")
    sandbox_id = await client.run_pod_sandbox(sandbox)
    try:
        container_id = await client.create_container(
            sandbox_id, container_config("job", ["sh", "-c", script]), sandbox
        )
        await client.start_container(container_id)
        status = await wait_for_state(client, container_id, cri.CONTAINER_EXITED)
        assert (status.exit_code, status.reason) == (exit_code, reason)
        (listed,) = await client.list_containers(cri.ContainerFilter(pod_sandbox_id=sandbox_id))
        assert (listed.id, listed.state) == (container_id, cri.CONTAINER_EXITED)
    finally:
        await client.stop_pod_sandbox(sandbox_id)
        await client.remove_pod_sandbox(sandbox_id)


async def test_unknown_ids_are_not_found(client: runtime.RuntimeClient) -> None:
    with pytest.raises(runtime.NotFound):
        await client.container_status("0" * 64)
    with pytest.raises(runtime.NotFound):
        await client.pod_sandbox_status("0" * 64)


def test_image_builder_refuses_a_dynamically_linked_busybox(tmp_path: Path) -> None:
    # Such a binary would fail inside the container, far from the cause.
    with pytest.raises(ValueError, match="not a statically linked"):
        _oci.build_busybox_image(tmp_path / "image.tar", busybox=Path(sys.executable))
    assert not list(tmp_path.iterdir())
