"""The VM runtime over real gRPC, on libvirt's built-in test driver (`test:///default`).

The test driver keeps domains in memory and runs no guest, so these tests see everything
but the guest itself: domains defined, started, rebooted, snapshotted, reverted, shut down
and undefined, overlays and seeds made and deleted, errors mapped to CRI codes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite import runtime
from arktos_lite.runtime import VM_MEMORY, VM_VCPUS, RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import (
    VIRTUAL_MACHINE,
    VM_ID,
    VM_POWER_STATE,
    VM_RESTART_COUNT,
    VM_STATE,
    VmRuntime,
    VmRuntimeConfig,
    import_vm_image,
    libvirt_missing,
)

TEST_URI = "test:///default"


def require_libvirt() -> None:
    reason = libvirt_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must install libvirt-dev and pip install libvirt-python)")
    pytest.skip(reason)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="vm-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _disk_image(path: Path) -> Path:
    if shutil.which("qemu-img"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    else:
        path.write_bytes(b"\0" * 1024 * 1024)
    return path


class Env:
    def __init__(self, config: VmRuntimeConfig, vm_runtime: VmRuntime, client: RuntimeClient):
        self.config = config
        self.runtime = vm_runtime
        self.client = client

    async def sandbox(self, name: str = "vm-pod") -> tuple[str, cri.PodSandboxConfig]:
        uid = str(uuid.uuid4())
        sb = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=name, uid=uid, namespace="default"),
            hostname=name,
            log_directory=str(self.config.root_dir / "pods" / name / "logs"),
            labels={"io.kubernetes.pod.uid": uid, "io.kubernetes.pod.name": name},
        )
        return await self.client.run_pod_sandbox(sb), sb

    async def vm(
        self,
        sandbox: tuple[str, cri.PodSandboxConfig],
        vm: dict[str, Any],
        *,
        start: bool = True,
    ) -> str:
        sid, sb = sandbox
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=vm.get("name", "vm")),
            image=cri.ImageSpec(image=vm.get("image", "")),
            log_path="vm/0.log",
            labels={"io.kubernetes.container.name": vm.get("name", "vm")},
            annotations={VIRTUAL_MACHINE: json.dumps(vm)},
        )
        cid = await self.client.create_container(sid, config, sb)
        if start:
            await self.client.start_container(cid)
        return cid


@contextlib.asynccontextmanager
async def serving(config: VmRuntimeConfig) -> AsyncIterator[Env]:
    """A VM runtime over `config`, serving CRI, and a client of it."""
    require_libvirt()
    vm_runtime = VmRuntime(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(vm_runtime.run)
        client = RuntimeClient(vm_runtime.endpoint)
        try:
            yield Env(config, vm_runtime, client)
        finally:
            for c in await client.list_containers():
                await client.remove_container(c.id)
            await client.aclose()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def env(tmp_path: Path, short_dir: Path) -> AsyncIterator[Env]:
    async with serving(
        VmRuntimeConfig(tmp_path / "vm", short_dir / "vm.sock", uri=TEST_URI)
    ) as env:
        yield env


def _image(env: Env, name: str = "cirros") -> str:
    import_vm_image(env.config.root_dir, _disk_image(env.config.root_dir / "src.qcow2"), name=name)
    return name


def _vm(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "vm1",
        "image": image,
        "resources": {"limits": {"cpu": "2", "memory": "256Mi"}},
        "publicKey": "ssh-ed25519 AAAA test@example",
        **extra,
    }


async def test_version_and_status(env: Env) -> None:
    version = await env.client.version()
    assert version.runtime_name == "arktos-vm"
    status = await env.client.status(verbose=True)
    ready = {c.type: c.status for c in status.status.conditions}
    assert ready["RuntimeReady"] is True
    assert status.info["uri"] == TEST_URI


async def test_on_demand_libvirt_opens_with_the_first_vm(tmp_path: Path, short_dir: Path) -> None:
    config = VmRuntimeConfig(
        tmp_path / "vm", short_dir / "vm.sock", uri=TEST_URI, connect_on_demand=True
    )
    async with serving(config) as env:
        status = await env.client.status(verbose=True)
        ready = {c.type: c for c in status.status.conditions}["RuntimeReady"]
        assert ready.status is True
        assert ready.message == f"libvirt {TEST_URI} is opened on the first VM call"
        assert "libvirt" not in status.info
        assert await env.client.list_containers() == []
        assert not env.runtime.manager.connected
        cid = await env.vm(await env.sandbox(), _vm(_image(env)))
        assert env.runtime.manager.connected
        assert (await env.client.container_status(cid)).state == cri.CONTAINER_RUNNING
        status = await env.client.status(verbose=True)
        ready = {c.type: c for c in status.status.conditions}["RuntimeReady"]
        assert (ready.status, ready.message) == (True, "")
        assert status.info["libvirt"].count(".") == 2


async def test_on_demand_libvirt_that_cannot_open(tmp_path: Path, short_dir: Path) -> None:
    uri = f"test://{tmp_path / 'missing.xml'}"
    config = VmRuntimeConfig(
        tmp_path / "vm", short_dir / "vm.sock", uri=uri, connect_on_demand=True
    )
    async with serving(config) as env:
        sandbox = await env.sandbox()
        for _attempt in range(2):
            with pytest.raises(runtime.Unavailable, match=f"cannot open libvirt {uri}"):
                await env.vm(sandbox, _vm(_image(env)), start=False)
            status = await env.client.status()
            ready = {c.type: c for c in status.status.conditions}["RuntimeReady"]
            assert (ready.status, ready.reason) == (False, "LibvirtUnavailable")
            assert ready.message.startswith(f"cannot open libvirt {uri}: ")
        assert await env.client.list_containers() == []


async def test_images_through_the_image_service(env: Env) -> None:
    name = _image(env)
    images = await env.client.list_images()
    assert [list(i.repo_tags) for i in images] == [[name]]
    image = await env.client.image_status(name)
    assert image is not None
    assert image.id.startswith("sha256:")
    assert image.spec.annotations["arktos.futurewei.com/vm-image-kind"] == "disk"
    assert await env.client.pull_image(name) == image.id
    with pytest.raises(runtime.NotFound, match="not in the store"):
        await env.client.pull_image("nosuchimage")
    await env.client.remove_image(name)
    assert await env.client.image_status(name) is None
    assert await env.client.list_images() == []


async def test_vm_lifecycle(env: Env) -> None:
    image = _image(env)
    sandbox = await env.sandbox()
    cid = await env.vm(sandbox, _vm(image))
    status = await env.client.container_status(cid)
    assert status.state == cri.CONTAINER_RUNNING
    assert status.annotations[VM_STATE] == "active"
    assert status.annotations[VM_POWER_STATE] == "running"
    assert status.annotations[VM_RESTART_COUNT] == "0"
    assert uuid.UUID(status.annotations[VM_ID])
    assert VIRTUAL_MACHINE in status.annotations  # the config's own annotations stay
    assert status.log_path.endswith("vm-pod/logs/vm/0.log")
    listed = await env.client.list_containers()
    assert [(c.id, c.annotations[VM_STATE]) for c in listed] == [(cid, "active")]

    # The domain has the VM's size, an overlay over the image and a cloud-init seed.
    manager = env.runtime.manager
    rec = manager._vms[cid]
    xml = (env.config.root_dir / "vms" / cid / "domain.xml").read_text()
    assert "<vcpu current='2'>" in xml
    assert f"<currentMemory unit='KiB'>{256 * 1024}</currentMemory>" in xml
    # Room to grow (UpdateContainerResources): twice the memory.
    assert f"<memory unit='KiB'>{512 * 1024}</memory>" in xml
    assert (status.annotations[VM_VCPUS], status.annotations[VM_MEMORY]) == (
        "2",
        str(256 * 1024 * 1024),
    )
    if manager.overlays:
        assert await trio.Path(rec.overlay).exists()
        assert rec.overlay in xml
    assert await trio.Path(rec.seed).exists()
    assert rec.seed in xml
    assert rec.domain in manager.conn.domain_names()

    await env.client.reboot_vm(cid)
    status = await env.client.container_status(cid)
    assert status.annotations[VM_RESTART_COUNT] == "1"
    assert status.state == cri.CONTAINER_RUNNING

    await env.client.create_snapshot(cid, "snap1")
    with pytest.raises(runtime.AlreadyExists):
        await env.client.create_snapshot(cid, "snap1")
    await env.client.restore_to_snapshot(cid, "snap1")
    with pytest.raises(runtime.NotFound, match="no snapshot 'missing'"):
        await env.client.restore_to_snapshot(cid, "missing")

    await env.client.stop_container(cid, timeout=5)
    status = await env.client.container_status(cid)
    assert status.state == cri.CONTAINER_EXITED
    assert (status.exit_code, status.reason) == (0, "Shutdown")
    assert status.annotations[VM_STATE] == "stopped"
    assert status.annotations[VM_POWER_STATE] == "shutdown"
    assert status.finished_at >= status.started_at > 0

    # Actions on a VM that is off fail clearly instead of hanging.
    with pytest.raises(runtime.FailedPrecondition, match="not running"):
        await env.client.create_snapshot(cid, "snap2")
    with pytest.raises(runtime.FailedPrecondition, match="not running"):
        await env.client.reboot_vm(cid)

    # A VM, unlike a container, powers on again.
    await env.client.start_container(cid)
    status = await env.client.container_status(cid)
    assert status.state == cri.CONTAINER_RUNNING
    assert status.annotations[VM_RESTART_COUNT] == "1"
    with pytest.raises(runtime.FailedPrecondition, match="running already"):
        await env.client.start_container(cid)

    await env.client.remove_container(cid)
    assert rec.domain not in manager.conn.domain_names()
    assert not (env.config.root_dir / "vms" / cid).exists()
    with pytest.raises(runtime.NotFound):
        await env.client.container_status(cid)
    await env.client.remove_container(cid)  # idempotent
    await env.client.remove_pod_sandbox(sandbox[0])
    assert await env.client.list_pod_sandbox() == []


async def test_created_vm_is_not_running(env: Env) -> None:
    image = _image(env)
    cid = await env.vm(await env.sandbox(), _vm(image), start=False)
    status = await env.client.container_status(cid)
    assert status.state == cri.CONTAINER_CREATED
    assert status.annotations[VM_STATE] == "building"
    with pytest.raises(runtime.FailedPrecondition):
        await env.client.create_snapshot(cid, "s")


async def test_serial_console_becomes_the_cri_log(env: Env) -> None:
    image = _image(env)
    cid = await env.vm(await env.sandbox(), _vm(image))
    # The test driver runs no guest: write what QEMU would append to the serial file.
    raw = trio.Path(env.config.root_dir / "vms" / cid / "serial" / "stdout")
    async with await raw.open("ab") as f:
        await f.write(b"ARKTOS-BOOT-MARKER\ncounter 1\n")
    log_path = trio.Path((await env.client.container_status(cid)).log_path)
    with trio.fail_after(5):
        while not (await log_path.exists() and "counter 1" in await log_path.read_text()):  # noqa: ASYNC110 (polls a file)
            await trio.sleep(0.05)
    lines = (await log_path.read_text()).splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "stdout F ARKTOS-BOOT-MARKER",
        "stdout F counter 1",
    ]


async def test_duplicates_filters_and_sandbox_removal(env: Env) -> None:
    image = _image(env)
    sandbox = await env.sandbox()
    cid = await env.vm(sandbox, _vm(image))
    with pytest.raises(runtime.AlreadyExists):
        await env.vm(sandbox, _vm(image))
    other = await env.vm(await env.sandbox("other"), _vm(image), start=False)
    running = await env.client.list_containers(
        cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING))
    )
    assert [c.id for c in running] == [cid]
    by_sandbox = await env.client.list_containers(cri.ContainerFilter(pod_sandbox_id=sandbox[0]))
    assert [c.id for c in by_sandbox] == [cid]
    # Stopping the sandbox powers its VM off at once; removing it removes the VM.
    await env.client.stop_pod_sandbox(sandbox[0])
    assert (await env.client.container_status(cid)).state == cri.CONTAINER_EXITED
    await env.client.remove_pod_sandbox(sandbox[0])
    assert [c.id for c in await env.client.list_containers()] == [other]


async def test_kernel_image_boots_directly(env: Env) -> None:
    kernel = env.config.root_dir / "vmlinuz"
    initrd = env.config.root_dir / "initrd.gz"
    await trio.Path(kernel).write_bytes(b"kernel")
    await trio.Path(initrd).write_bytes(b"initrd")
    import_vm_image(
        env.config.root_dir, kernel, name="tiny", kind="kernel", initrd=initrd, cmdline="quiet"
    )
    cid = await env.vm(await env.sandbox(), _vm("tiny"))
    rec = env.runtime.manager._vms[cid]
    xml = await trio.Path(env.config.root_dir / "vms" / cid / "domain.xml").read_text()
    assert "<cmdline>quiet console=ttyS0</cmdline>" in xml
    assert "/kernel</kernel>" in xml
    assert "/initrd</initrd>" in xml
    assert rec.seed == ""  # no cloud-init for kernel images
    if env.runtime.manager.overlays:
        # An empty qcow2 disk holds the internal snapshots' memory.
        assert rec.state_disk in xml
    await env.client.create_snapshot(cid, "s")
    await env.client.restore_to_snapshot(cid, "s")
    assert (await env.client.container_status(cid)).state == cri.CONTAINER_RUNNING


async def test_reboot_delay_is_honoured(env: Env) -> None:
    image = _image(env)
    cid = await env.vm(await env.sandbox(), _vm(image))
    before = trio.current_time()
    await env.client.reboot_vm(cid, delay_seconds=1)
    assert trio.current_time() - before >= 1.0
    status = await env.client.container_status(cid)
    assert status.annotations[VM_RESTART_COUNT] == "1"


async def test_invalid_vm_specs(env: Env) -> None:
    image = _image(env)
    sandbox = await env.sandbox()
    with pytest.raises(runtime.InvalidArgument, match="has no image"):
        await env.vm(sandbox, {"name": "vm1", "publicKey": "k"})
    with pytest.raises(runtime.NotFound, match="'nosuch' is not in the VM runtime's store"):
        await env.vm(sandbox, _vm("nosuch"))
    with pytest.raises(runtime.InvalidArgument, match="memory"):
        await env.vm(sandbox, _vm(image, resources={"limits": {"memory": "lots"}}))
    with pytest.raises(runtime.InvalidArgument, match="userData is not base64"):
        await env.vm(sandbox, _vm(image, userData="%%%"))
    with pytest.raises(runtime.NotFound):
        await env.client.reboot_vm("nosuchvm")
    with pytest.raises(runtime.NotFound):
        await env.client.create_snapshot("nosuchvm", "s")
    # Nothing is left behind by the failures.
    assert await env.client.list_containers() == []
    assert list((env.config.root_dir / "vms").iterdir()) == []


async def test_user_data_reaches_the_seed(env: Env) -> None:
    image = _image(env)
    script = "#!/bin/sh\necho hello\n"
    cid = await env.vm(
        await env.sandbox(),
        _vm(image, userData=base64.b64encode(b"#cloud-config\n{}\n").decode(),
            cloudInitUserDataScript=script),
        start=False,
    )  # fmt: skip
    files = read_seed(Path(env.runtime.manager._vms[cid].seed))
    assert files["volume"] == b"cidata"
    assert b"echo hello" in files["user-data"]
    assert b"#cloud-config" in files["user-data"]
    meta = json.loads(files["meta-data"])
    assert meta["instance-id"] == cid
    assert meta["local-hostname"] == "vm-pod"
    assert meta["public-keys"] == ["ssh-ed25519 AAAA test@example"]


def read_seed(path: Path) -> dict[str, bytes]:
    import io

    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = {"volume": iso.pvd.volume_identifier.strip()}
        for name in ("meta-data", "user-data"):
            buf = io.BytesIO()
            iso.get_file_from_iso_fp(buf, rr_path=f"/{name}")
            out[name] = buf.getvalue()
        return out
    finally:
        iso.close()


async def _facts(env: Env, cid: str) -> tuple[int, str, str]:
    status = await env.client.container_status(cid)
    [listed] = await env.client.list_containers(cri.ContainerFilter(id=cid))
    assert listed.annotations[VM_STATE] == status.annotations[VM_STATE]
    return status.state, status.annotations[VM_STATE], status.annotations[VM_POWER_STATE]


async def test_pause_resume_and_suspend(env: Env) -> None:
    image = _image(env)
    cid = await env.vm(await env.sandbox(), _vm(image))
    manager = env.runtime.manager
    dom = manager.conn.lookup(manager._vms[cid].domain)
    assert dom is not None
    started = (await env.client.container_status(cid)).started_at

    for _ in range(2):  # idempotent
        await env.client.pause_vm(cid)
        assert await _facts(env, cid) == (cri.CONTAINER_RUNNING, "paused", "paused")
    for _ in range(2):
        await env.client.resume_vm(cid)
        assert await _facts(env, cid) == (cri.CONTAINER_RUNNING, "active", "running")

    # Suspended: the memory is in libvirt's managed save file and the domain is off, but
    # to the CRI the VM still runs (it resumes where it was, not from a boot).
    for _ in range(2):
        await env.client.suspend_vm(cid)
        assert await _facts(env, cid) == (cri.CONTAINER_RUNNING, "suspended", "suspended")
    assert dom.has_managed_save()
    with pytest.raises(runtime.FailedPrecondition, match="it is suspended, not running"):
        await env.client.pause_vm(cid)
    await env.client.resume_vm(cid)
    assert await _facts(env, cid) == (cri.CONTAINER_RUNNING, "active", "running")
    assert not dom.has_managed_save()
    assert (await env.client.container_status(cid)).started_at == started

    # A paused VM suspends too, and StartContainer also restores a suspended one.
    await env.client.pause_vm(cid)
    await env.client.suspend_vm(cid)
    assert await _facts(env, cid) == (cri.CONTAINER_RUNNING, "suspended", "suspended")
    await env.client.start_container(cid)
    assert await _facts(env, cid) == (cri.CONTAINER_RUNNING, "active", "running")

    # Stopping a suspended VM drops its saved memory: it is off, cleanly.
    await env.client.suspend_vm(cid)
    await env.client.stop_container(cid, timeout=5)
    status = await env.client.container_status(cid)
    assert (status.state, status.exit_code, status.reason) == (cri.CONTAINER_EXITED, 0, "Shutdown")
    assert status.annotations[VM_STATE] == "stopped"
    assert not dom.has_managed_save()
    with pytest.raises(runtime.FailedPrecondition, match="not paused or suspended"):
        await env.client.resume_vm(cid)
    with pytest.raises(runtime.FailedPrecondition, match="not running"):
        await env.client.pause_vm(cid)
    with pytest.raises(runtime.FailedPrecondition, match="not running"):
        await env.client.suspend_vm(cid)
    with pytest.raises(runtime.NotFound):
        await env.client.pause_vm("nosuchvm")

    # A suspended VM is removed with its managed save.
    await env.client.start_container(cid)
    await env.client.suspend_vm(cid)
    await env.client.remove_container(cid)
    assert manager.conn.lookup(f"arktos-{cid[:16]}") is None


def _resize(vm: dict[str, Any], **limits: str) -> dict[str, str]:
    return {VIRTUAL_MACHINE: json.dumps({**vm, "resources": {"limits": limits}})}


async def test_resize_within_the_maxima(tmp_path: Path, short_dir: Path) -> None:
    config = VmRuntimeConfig(tmp_path / "vm", short_dir / "vm.sock", uri=TEST_URI, max_vcpus=4)
    async with serving(config) as env:
        image = _image(env)
        vm = _vm(image)  # 2 vCPUs, 256Mi: at most 4 vCPUs and 512Mi
        cid = await env.vm(await env.sandbox(), vm)

        async def size() -> tuple[str, str]:
            status = await env.client.container_status(cid)
            return status.annotations[VM_VCPUS], status.annotations[VM_MEMORY]

        none = cri.LinuxContainerResources()
        await env.client.update_container_resources(
            cid, none, annotations=_resize(vm, cpu="3", memory="384Mi")
        )
        assert await size() == ("3", str(384 * 1024 * 1024))
        # The domain's config keeps the new size: it survives a power cycle.
        await env.client.stop_container(cid, timeout=1)
        await env.client.start_container(cid)
        assert await size() == ("3", str(384 * 1024 * 1024))

        # Beyond the maxima: refused, with the reason, and the VM keeps its size.
        with pytest.raises(runtime.FailedPrecondition, match=r"8 vCPUs \(at most 4\)"):
            await env.client.update_container_resources(cid, none, annotations=_resize(vm, cpu="8"))
        with pytest.raises(runtime.FailedPrecondition, match="recreate the pod"):
            await env.client.update_container_resources(
                cid, none, annotations=_resize(vm, cpu="2", memory="1Gi")
            )
        assert await size() == ("3", str(384 * 1024 * 1024))
        with pytest.raises(runtime.InvalidArgument, match="not JSON"):
            await env.client.update_container_resources(
                cid, none, annotations={VIRTUAL_MACHINE: "{"}
            )

        # The plain CRI form (CPU quota/period and a memory limit) works too.
        await env.client.update_container_resources(
            cid,
            cri.LinuxContainerResources(
                cpu_period=100_000, cpu_quota=150_000, memory_limit_in_bytes=300 * 1024 * 1024
            ),
        )
        assert await size() == ("2", str(300 * 1024 * 1024))

        # A VM that is off is resized in its config; a suspended one is not resized.
        await env.client.stop_container(cid, timeout=1)
        await env.client.update_container_resources(cid, none, annotations=_resize(vm, cpu="1"))
        assert (await size())[0] == "1"
        await env.client.start_container(cid)
        assert (await size())[0] == "1"
        await env.client.suspend_vm(cid)
        with pytest.raises(runtime.FailedPrecondition, match="suspended: resume it first"):
            await env.client.update_container_resources(cid, none, annotations=_resize(vm, cpu="2"))


async def test_guests_attach_to_the_bridge_when_it_exists(tmp_path: Path, short_dir: Path) -> None:
    sysfs = tmp_path / "sys-class-net"
    (sysfs / "br-test" / "bridge").mkdir(parents=True)
    (sysfs / "eth0").mkdir()
    for bridge, ready, reason in (
        ("br-test", True, "Bridge"),
        ("eth0", False, "BridgeNotFound"),  # an interface, but not a bridge
        ("br-none", False, "BridgeNotFound"),
    ):
        config = VmRuntimeConfig(
            tmp_path / bridge,
            short_dir / f"{bridge}.sock",
            uri=TEST_URI,
            bridge=bridge,
            net_sysfs=sysfs,
        )
        async with serving(config) as env:
            status = await env.client.status()
            network = {c.type: c for c in status.status.conditions}["NetworkReady"]
            assert (network.status, network.reason) == (ready, reason), bridge
            cid = await env.vm(await env.sandbox(), _vm(_image(env)))
            found = await env.client.container_status(cid)
            xml = (config.root_dir / "vms" / cid / "domain.xml").read_text()
            # Never a failed VM: without its bridge it runs without a NIC, and says so.
            assert found.state == cri.CONTAINER_RUNNING
            if ready:
                assert "<interface type='bridge'><source bridge=\"br-test\"/>" in xml
                assert "<model type='virtio'/>" in xml
                assert "no network device" not in found.message
            else:
                assert "<interface" not in xml
                assert (
                    f"no network device: bridge {bridge} does not exist on this node"
                    in found.message
                )


async def test_a_key_pair_without_a_key_is_noted(env: Env) -> None:
    # A direct CRI caller that names a key pair but sends no key: the VM runs, and says so.
    vm = {k: v for k, v in _vm(_image(env), keyPairName="k1").items() if k != "publicKey"}
    cid = await env.vm(await env.sandbox(), vm)
    status = await env.client.container_status(cid)
    assert status.state == cri.CONTAINER_RUNNING
    assert "key pair 'k1' is not resolved (no key store)" in status.message


async def test_restarted_runtime_finds_its_vms(tmp_path: Path, short_dir: Path) -> None:
    require_libvirt()
    from arktos_lite.runtime.vm import _libvirt

    # The test driver's default instance lives while a connection to it is open.
    keep = _libvirt.Connection.open(TEST_URI)
    # On demand: the first round opens libvirt with its VM, the second at start (a VM exists).
    config = VmRuntimeConfig(
        tmp_path / "vm", short_dir / "vm.sock", uri=TEST_URI, connect_on_demand=True
    )
    import_vm_image(config.root_dir, _disk_image(tmp_path / "src.qcow2"), name="img")
    try:
        for round_ in range(2):
            vm_runtime = VmRuntime(config)
            async with trio.open_nursery() as inner:
                await inner.start(vm_runtime.run)
                client = RuntimeClient(vm_runtime.endpoint)
                assert vm_runtime.manager.connected is (round_ == 1)
                try:
                    if round_ == 0:
                        sid = await client.run_pod_sandbox(
                            cri.PodSandboxConfig(
                                metadata=cri.PodSandboxMetadata(name="p", uid="u1"),
                            )
                        )
                        config_ = cri.ContainerConfig(
                            metadata=cri.ContainerMetadata(name="vm"),
                            annotations={VIRTUAL_MACHINE: json.dumps(_vm("img"))},
                        )
                        cid = await client.create_container(sid, config_, cri.PodSandboxConfig())
                        await client.start_container(cid)
                        await client.reboot_vm(cid)
                    else:
                        [c] = await client.list_containers()
                        assert c.id == cid
                        assert c.state == cri.CONTAINER_RUNNING
                        assert c.annotations[VM_RESTART_COUNT] == "1"
                        await client.remove_container(c.id)
                finally:
                    await client.aclose()
                inner.cancel_scope.cancel()
    finally:
        keep.close()


@pytest.mark.slow
async def test_a_real_qemu_domain_in_a_fresh_interpreter(tmp_path: Path, short_dir: Path) -> None:
    require_libvirt()
    missing = [t for t in ("qemu-system-x86_64", "qemu-img") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("libvirt-qemu")
        except KeyError:
            pytest.skip("the embedded QEMU driver needs a system user libvirt-qemu when root")
    script = Path(__file__).with_name("_vm_embed_smoke.py")
    result = await trio.run_process(
        [sys.executable, str(script), str(short_dir)], capture_stdout=True, capture_stderr=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    seen = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert seen == {
        "running": [cri.CONTAINER_RUNNING, "active"],
        "restored": [cri.CONTAINER_RUNNING, "active"],
        "stopped": [cri.CONTAINER_EXITED, "Shutdown", 0],
        "left": [],
    }
