"""The process runtime with imported images: containers run by runc in the image's rootfs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite.runtime import RuntimeClient, _oci, errors as runtime_errors
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import (
    ImportedImage,
    ProcessRuntimeConfig,
    _runc,
    import_image,
)

from ._process import Env, serve

EnvFactory = Callable[..., Awaitable[Env]]
BUSYBOX = Path("/bin/busybox")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")


def missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "runc containers need root"
    for tool in ("runc", "unshare", "nsenter", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not BUSYBOX.exists():
        return f"{BUSYBOX} is missing (install busybox-static)"
    return None


@pytest.fixture(autouse=True)
def require_runc() -> None:
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must run as root with runc and busybox-static)")
    pytest.skip(reason)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="cri-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    return tmp_path / "runtime"


@pytest.fixture
def busybox(tmp_path: Path, root_dir: Path) -> ImportedImage:
    archive = _oci.build_busybox_image(tmp_path / "busybox.oci.tar")
    return import_image(root_dir, archive)


@pytest.fixture
async def make_env(
    nursery: trio.Nursery, tmp_path: Path, short_dir: Path, root_dir: Path
) -> AsyncIterator[EnvFactory]:
    envs: list[Env] = []
    count = 0

    async def make(**overrides: Any) -> Env:
        nonlocal count
        count += 1
        values: dict[str, Any] = {
            "root_dir": root_dir,
            "socket_path": short_dir / f"cri{count}.sock",
            "isolate": True,
        }
        values.update(overrides)
        config = ProcessRuntimeConfig(**values)
        served = await serve(nursery, config)
        client = RuntimeClient(f"unix://{config.socket_path}")
        env = Env(nursery, config, served, client, tmp_path)
        envs.append(env)
        return env

    yield make
    for env in envs:
        if not env.served.done.is_set():
            for sb in await env.client.list_pod_sandbox():
                await env.client.remove_pod_sandbox(sb.id)
            await env.served.stop()
        await env.client.aclose()


@pytest.fixture
async def env(make_env: EnvFactory, busybox: ImportedImage) -> Env:
    return await make_env()


def texts(lines: list[str], stream: str = "stdout") -> list[str]:
    out = []
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, f"not a CRI log line: {line!r}"
        if m.group(1) == stream:
            out.append(m.group(3))
    return out


def runc_list(root_dir: Path) -> list[str]:
    done = subprocess.run(
        ["runc", "--root", str(root_dir / "runc"), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


def mounts_under(directory: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(str(directory))]


def init_pid(root_dir: Path, cid: str) -> int:
    done = subprocess.run(
        ["runc", "--root", str(root_dir / "runc"), "state", cid],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(done.stdout)["pid"])


def leftovers(root: Path, cid: str, *, pid: int, cgroup_name: str) -> list[str]:
    """What a removed runc container could have left behind."""
    found = [f"runc container {c}" for c in runc_list(root)]
    found += [f"mount {m}" for m in mounts_under(root)]
    if Path(f"/proc/{pid}").exists():
        found.append(f"process {pid}")
    if (root / "containers" / cid).exists():
        found.append("container directory")
    found += [
        f"cgroup {d}" for base in _runc._hierarchies() if (d := base / cgroup_name / cid).exists()
    ]
    return found


async def test_status_says_runc(env: Env) -> None:
    status = await env.client.status(verbose=True)
    assert status.info["isolation"].startswith("namespaces")
    assert status.info["isolation"].endswith(",runc")


async def test_stored_images_in_the_image_service(env: Env, busybox: ImportedImage) -> None:
    assert busybox.name == "docker.io/library/busybox:latest"
    for ref in ("busybox", "busybox:latest", busybox.name, busybox.id):
        image = await env.client.image_status(ref)
        assert image is not None, ref
        assert image.id == busybox.id
        assert list(image.repo_tags) == [busybox.name]
        assert list(image.repo_digests) == [f"docker.io/library/busybox@{busybox.digest}"]
        assert image.size == busybox.size > 1_000_000
    # Stored: no network, the id; not stored: recorded by name, as before.
    assert await env.client.pull_image("busybox") == busybox.id
    nominal = await env.client.pull_image("nginx:1.27")
    assert nominal != busybox.id
    listed = {i.id: list(i.repo_tags) for i in await env.client.list_images()}
    assert listed == {busybox.id: [busybox.name], nominal: ["nginx:1.27"]}
    await env.client.remove_image("busybox")
    assert await env.client.image_status("busybox") is None
    assert [i.id for i in await env.client.list_images()] == [nominal]


async def test_an_import_while_running_is_seen(
    make_env: EnvFactory, tmp_path: Path, root_dir: Path
) -> None:
    env = await make_env()
    assert await env.client.image_status("busybox") is None
    archive = _oci.build_busybox_image(tmp_path / "b.tar", name="localhost/tools/bb:1")
    imported = await trio.to_thread.run_sync(lambda: import_image(root_dir, archive))
    image = await env.client.image_status("localhost/tools/bb:1")
    assert image is not None
    assert image.id == imported.id


async def test_a_container_sees_the_image_rootfs(env: Env, busybox: ImportedImage) -> None:
    sb = await env.sandbox(hostname="web-1")
    script = (
        "echo hello; cat /etc/os-release 2>/dev/null || ls /; "
        "[ -x /bin/busybox ] && echo has-busybox; [ -e /work ] || echo no-work; "
        "hostname; cat /etc/hostname; echo pid=$$"
    )
    cid = await env.container(sb, ["sh", "-c", script])
    status = await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert status.image_ref == busybox.id
    out = texts(env.log_lines(cid))
    assert out[0] == "hello"
    assert {"bin", "etc"} <= set(out)
    assert "work" not in out
    assert out[-5:] == ["has-busybox", "no-work", "web-1", "web-1", "pid=1"]
    info = env.supervisor.container_info(cid)
    assert info["isolation"] == "runc"


async def test_exit_codes(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "echo oops >&2; exit 3"])
    status = await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (3, "Error")
    assert texts(env.log_lines(cid), "stderr") == ["oops"]
    missing = await env.container(sb, ["no-such-program"], name="missing")
    status = await env.wait_state(missing, cri.CONTAINER_EXITED)
    assert status.exit_code != 0


async def test_image_entrypoint_and_cmd(make_env: EnvFactory, tmp_path: Path) -> None:
    archive = _oci.build_image(
        tmp_path / "echo.tar",
        name="localhost/echo:1",
        entrypoint=("echo", "entry"),
        cmd=("default",),
    ).path
    import_image(tmp_path / "runtime", archive)
    env = await make_env()
    sb = await env.sandbox()
    cases = {
        "image": ({}, "entry default"),
        "args": ({"args": ["given"]}, "entry given"),
        "command": ({"command": ["echo", "cmd"]}, "cmd"),
    }
    for name, (config, expected) in cases.items():
        command = config.pop("command", [])
        cid = await env.container(sb, command, name=name, image="localhost/echo:1", **config)
        await env.wait_state(cid, cri.CONTAINER_EXITED)
        assert texts(env.log_lines(cid)) == [expected], name


async def test_env_and_exec_sync(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(
        sb,
        ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"],
        envs={"GREETING": "hi"},
        working_dir="/tmp",
    )
    await env.wait_state(cid, cri.CONTAINER_RUNNING)
    result = await env.client.exec_sync(
        cid, ["sh", "-c", "echo $GREETING $PATH; pwd; ls /work 2>&1; exit 5"], timeout=5
    )
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "hi /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert lines[1] == "/tmp"
    assert "No such file" in lines[2]
    assert result.exit_code == 5
    # Exec'd processes share the container's PID namespace, and only it.
    result = await env.client.exec_sync(cid, ["ps", "-o", "pid,args"], timeout=5)
    assert result.exit_code == 0
    assert re.search(r"^\s*1 sh -c trap", result.stdout.decode(), re.M), result.stdout
    # A command that outlives its timeout is killed, inside the container too.
    with trio.fail_after(3), pytest.raises(runtime_errors.DeadlineExceeded):
        await env.client.exec_sync(cid, ["sleep", "30"], timeout=0.5)
    result = await env.client.exec_sync(cid, ["ps", "-o", "args"], timeout=5)
    assert "sleep 30" not in result.stdout.decode()
    stats = await env.client.container_stats(cid)
    assert stats.memory.working_set_bytes.value > 0
    assert stats.cpu.usage_core_nano_seconds.value > 0
    spec = env.supervisor.exec_spec(cid, ["true"], tty=True)
    assert Path(spec.argv[0]).name == "runc"
    assert spec.argv[-4:] == ["exec", "--tty", cid, "true"]


async def test_stop_sigterm_then_sigkill(env: Env) -> None:
    sb = await env.sandbox()
    polite = await env.container(
        sb, ["sh", "-c", "trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"]
    )
    await env.wait_log(polite, lambda ls: len(ls) >= 1)
    with trio.fail_after(3):
        await env.client.stop_container(polite, timeout=10)
    status = await env.client.container_status(polite)
    assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 7)
    assert "term" in texts(env.log_lines(polite))

    # PID 1 of a namespace without a handler ignores SIGTERM: SIGKILL after the timeout.
    stubborn = await env.container(sb, ["sh", "-c", "echo ready; sleep 30"], name="stubborn")
    await env.wait_log(stubborn, lambda ls: len(ls) >= 1)
    start = trio.current_time()
    with trio.fail_after(5):
        await env.client.stop_container(stubborn, timeout=1)
    assert trio.current_time() - start >= 1
    status = await env.client.container_status(stubborn)
    assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 128 + signal.SIGKILL)
    assert runc_list(env.config.root_dir) == []


async def test_mounts_and_memory_limit(env: Env, tmp_path: Path) -> None:
    sb = await env.sandbox()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    cid = await env.container(
        sb,
        ["sh", "-c", "cat /data/in.txt; echo out > /data/out.txt; echo x > /ro/x || echo ro"],
        mounts=[
            cri.Mount(container_path="/data", host_path=str(shared)),
            cri.Mount(container_path="/ro", host_path=str(shared), readonly=True),
        ],
    )
    status = await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert status.exit_code == 0
    out = texts(env.log_lines(cid))
    assert (out[0], out[-1]) == ("from host", "ro")
    assert (shared / "out.txt").read_text() == "out\n"
    assert not (shared / "x").exists()

    isolation = env.supervisor.isolation
    if isolation.cgroups is None or "memory" not in isolation.cgroups.parents:
        pytest.skip(f"no writable cgroup v1 memory hierarchy: {isolation.description}")
    hog = await env.container(
        sb,
        ["awk", 'BEGIN { s = "x"; while (1) s = s s }'],
        name="hog",
        linux=cri.LinuxContainerConfig(
            resources=cri.LinuxContainerResources(memory_limit_in_bytes=32 * 1024 * 1024)
        ),
    )
    status = await env.wait_state(hog, cri.CONTAINER_EXITED, within=15)
    assert (status.reason, status.exit_code) == ("OOMKilled", 137)


async def test_nothing_left_after_the_sandbox_is_removed(env: Env) -> None:
    root = env.config.root_dir
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "sleep 60 & sleep 60"])
    await env.wait_state(cid, cri.CONTAINER_RUNNING)
    with trio.fail_after(5):
        while cid not in runc_list(root):  # noqa: ASYNC110 (polls runc)
            await trio.sleep(0.02)
    pid = init_pid(root, cid)
    assert mounts_under(root / "containers" / cid)
    await env.client.stop_pod_sandbox(sb[0])
    await env.client.remove_pod_sandbox(sb[0])
    assert leftovers(root, cid, pid=pid, cgroup_name=env.config.cgroup_name) == []


async def test_a_new_runtime_adopts_a_runc_container(make_env: EnvFactory, busybox: Any) -> None:
    first = await make_env()
    sb = await first.sandbox()
    cid = await first.container(
        sb, ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.1; done"]
    )
    await first.wait_log(cid, lambda ls: len(ls) == 1)
    await first.served.stop()
    assert cid in runc_list(first.config.root_dir)

    second = await make_env()
    status = await second.client.container_status(cid)
    assert status.state == cri.CONTAINER_RUNNING
    result = await second.client.exec_sync(cid, ["cat", "/etc/hostname"], timeout=5)
    assert (result.stdout, result.exit_code) == (b"pod\n", 0)
    await second.client.stop_container(cid, timeout=5)
    status = await second.client.container_status(cid)
    assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 0)
    assert texts(second.log_lines(cid)) == ["up", "bye"]


async def test_an_image_removed_while_in_use_still_starts(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "echo still-here"], start=False)
    await env.client.remove_image("busybox")
    assert await env.client.image_status("busybox") is None
    await env.client.start_container(cid)
    await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert texts(env.log_lines(cid)) == ["still-here"]
