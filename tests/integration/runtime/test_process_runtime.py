"""The process runtime over real gRPC: containers are real processes on this host."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite import runtime
from arktos_lite.runtime import RuntimeClient
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import ProcessRuntimeConfig, _procfs

from ._process import Env, serve

EnvFactory = Callable[..., Awaitable[Env]]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="cri-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


ISOLATION_AVAILABLE = os.geteuid() == 0 and shutil.which("unshare") is not None
needs_isolation = pytest.mark.skipif(
    not ISOLATION_AVAILABLE, reason="namespaces need root and unshare"
)


@pytest.fixture(
    params=[
        pytest.param(False, id="plain"),
        pytest.param(True, id="isolated", marks=needs_isolation),
    ]
)
def isolate(request: pytest.FixtureRequest) -> bool:
    """Most tests run twice: as plain host processes, and in namespaces (+ cgroups)."""
    return bool(request.param)


@pytest.fixture
def make_config(
    tmp_path: Path, short_dir: Path, isolate: bool
) -> Callable[..., ProcessRuntimeConfig]:
    def make(**overrides: Any) -> ProcessRuntimeConfig:
        values: dict[str, Any] = {
            "root_dir": tmp_path / "runtime",
            "socket_path": short_dir / "cri.sock",
            "isolate": isolate,
        }
        values.update(overrides)
        return ProcessRuntimeConfig(**values)

    return make


@pytest.fixture
async def make_env(
    nursery: trio.Nursery, tmp_path: Path, make_config: Callable[..., ProcessRuntimeConfig]
) -> AsyncIterator[EnvFactory]:
    """Starts a runtime (isolate=False unless asked) and cleans every sandbox up after."""
    envs: list[Env] = []

    async def make(**overrides: Any) -> Env:
        config = make_config(**overrides)
        served = await serve(nursery, config)
        client = RuntimeClient(f"unix://{config.socket_path}")
        env = Env(nursery, config, served, client, tmp_path)
        envs.append(env)
        return env

    yield make
    for env in envs:
        # The runtime never kills containers on exit: tests must not leak processes.
        if not env.served.done.is_set():
            for sb in await env.client.list_pod_sandbox():
                await env.client.remove_pod_sandbox(sb.id)
            await env.served.stop()
        await env.client.aclose()


@pytest.fixture
async def env(make_env: EnvFactory) -> Env:
    return await make_env()


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")


def texts(lines: list[str], stream: str = "stdout") -> list[str]:
    out = []
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, f"not a CRI log line: {line!r}"
        if m.group(1) == stream:
            out.append(m.group(3))
    return out


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def file_sizes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in directory.iterdir()}


async def test_version_and_status(env: Env, isolate: bool) -> None:
    version = await env.client.version()
    assert version.runtime_name == "arktos-process"
    assert version.runtime_api_version == "v1"
    status = await env.client.status(verbose=True)
    conditions = {c.type: c.status for c in status.status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    if isolate:
        assert status.info["isolation"].startswith("namespaces")
    else:
        assert status.info["isolation"] == "none (disabled)"


async def test_container_runs_and_logs_in_cri_format(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "echo hello; echo oops >&2; sleep 30"])
    status = await env.wait_state(cid, cri.CONTAINER_RUNNING)
    assert status.started_at > 0
    assert status.log_path == str(env.tmp / "pods" / "pod" / "logs" / "c" / "0.log")
    lines = await env.wait_log(cid, lambda ls: len(ls) >= 2)
    assert texts(lines) == ["hello"]
    assert texts(lines, "stderr") == ["oops"]
    sandbox = await env.client.pod_sandbox_status(sb[0])
    assert sandbox.state == cri.SANDBOX_READY
    assert sandbox.network.ip == "127.0.0.1"
    assert sandbox.metadata.name == "pod"


async def test_exit_codes_and_reasons(env: Env) -> None:
    sb = await env.sandbox()
    failed = await env.container(sb, ["sh", "-c", "exit 3"], name="failed")
    done = await env.container(sb, ["true"], name="done")
    status = await env.wait_state(failed, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (3, "Error")
    assert status.finished_at >= status.started_at > 0
    status = await env.wait_state(done, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (0, "Completed")


async def test_termination_message_is_the_status_message(env: Env) -> None:
    sb = await env.sandbox()
    message_file = env.tmp / "termination-log"
    cid = await env.container(
        sb,
        ["sh", "-c", f"echo 'it broke' > {message_file}; exit 1"],
        annotations={"io.kubernetes.container.terminationMessagePath": str(message_file)},
    )
    status = await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert status.message == "it broke\n"


async def test_stop_sends_sigterm(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "echo ready; exec sleep 30"])
    await env.wait_log(cid, lambda ls: len(ls) == 1)
    with trio.fail_after(2):
        await env.client.stop_container(cid, timeout=10)
    status = await env.client.container_status(cid)
    assert status.state == cri.CONTAINER_EXITED
    assert status.exit_code == 128 + signal.SIGTERM


async def test_a_container_stopped_as_it_starts_gets_sigterm(env: Env) -> None:
    # A SIGTERM that came while the wrapper was still starting the workload used to be
    # taken by the wrapper's trap: the workload ran on until SIGKILL at the timeout.
    sb = await env.sandbox()
    for attempt in range(10):
        cid = await env.container(sb, ["sleep", "30"], name=f"c{attempt}")
        with trio.fail_after(3):
            await env.client.stop_container(cid, timeout=10)
        status = await env.client.container_status(cid)
        assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 128 + signal.SIGTERM)


async def test_stop_escalates_to_sigkill(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "trap '' TERM; echo ready; sleep 30"])
    await env.wait_log(cid, lambda ls: len(ls) == 1)
    start = trio.current_time()
    with trio.fail_after(3):
        await env.client.stop_container(cid, timeout=1)
    assert trio.current_time() - start >= 1
    status = await env.client.container_status(cid)
    assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 128 + signal.SIGKILL)


async def test_env_working_dir_and_args(env: Env) -> None:
    sb = await env.sandbox()
    workdir = env.tmp / "wd"
    workdir.mkdir()
    cid = await env.container(
        sb,
        ["sh", "-c"],
        args=['echo "$GREETING $0 $1"; pwd; env | sort', "first", "second"],
        envs={"GREETING": "hi there"},
        working_dir=str(workdir),
    )
    await env.wait_state(cid, cri.CONTAINER_EXITED)
    out = texts(env.log_lines(cid))
    assert out[0] == "hi there first second"
    assert out[1] == str(workdir)
    variables = {line.split("=", 1)[0] for line in out[2:]}
    # Exactly what was given, plus PATH (and the shell's own PWD).
    assert variables <= {"GREETING", "PATH", "PWD"}
    assert {"GREETING", "PATH"} <= variables


async def test_containers_start_with_default_signal_handling(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    await env.wait_state(cid, cri.CONTAINER_EXITED)
    masks = dict(line.split(":\t") for line in texts(env.log_lines(cid)))
    # The standard signals (1-31); glibc reserves 32 and 33 for itself.
    assert int(masks["SigBlk"], 16) & 0x7FFFFFFF == 0
    assert int(masks["SigIgn"], 16) & 0x7FFFFFFF == 0


async def test_long_lines_are_split_into_partial_records(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "head -c 20000 /dev/zero | tr '\\0' a; echo"])
    await env.wait_state(cid, cri.CONTAINER_EXITED)
    lines = env.log_lines(cid)
    tags = [LOG_LINE.match(line).group(2) for line in lines]  # type: ignore[union-attr]
    assert tags == ["P", "F"]
    assert "".join(texts(lines)) == "a" * 20000


async def test_logs_rotate_by_size(make_env: EnvFactory) -> None:
    env = await make_env(log_max_bytes=2000, log_max_files=3)
    sb = await env.sandbox()
    cid = await env.container(
        sb, ["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done"]
    )
    await env.wait_state(cid, cri.CONTAINER_EXITED)
    log_path = Path((await env.client.container_status(cid)).log_path)
    sizes = file_sizes(log_path.parent)
    assert sorted(sizes) == ["0.log", "0.log.1", "0.log.2"]
    assert max(sizes.values()) <= 2000
    newest = texts(read_lines(log_path))
    assert newest[-1] == "line-199"
    rotated = texts(read_lines(log_path.with_name("0.log.1")))
    assert int(rotated[-1].split("-")[1]) + 1 == int(newest[0].split("-")[1])


async def test_reopen_container_log(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(
        sb, ["sh", "-c", "echo one; while [ ! -e go ]; do sleep 0.02; done; echo two; sleep 30"]
    )
    await env.wait_log(cid, lambda ls: len(ls) == 1)
    status = await env.client.container_status(cid)
    log_path = Path(status.log_path)
    os.rename(log_path, log_path.with_name("moved.log"))
    await env.client.reopen_container_log(cid)
    workdir = Path(env.supervisor.container_info(cid)["workdir"])
    (workdir / "go").touch()
    lines = await env.wait_log(cid, lambda ls: len(ls) == 1)
    assert texts(lines) == ["two"]
    assert texts(read_lines(log_path.with_name("moved.log"))) == ["one"]


async def test_exec_sync(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sleep", "30"], envs={"WHO": "container"})
    await env.wait_state(cid, cri.CONTAINER_RUNNING)
    result = await env.client.exec_sync(
        cid, ["sh", "-c", "echo out $WHO; echo err >&2; exit 4"], timeout=5
    )
    assert (result.stdout, result.stderr, result.exit_code) == (b"out container\n", b"err\n", 4)
    with trio.fail_after(3), pytest.raises(runtime.DeadlineExceeded):
        await env.client.exec_sync(cid, ["sleep", "10"], timeout=1)
    missing = await env.client.exec_sync(cid, ["no-such-program-x"], timeout=5)
    assert missing.exit_code == 127
    with pytest.raises(runtime.NotFound):
        await env.client.exec_sync("nope", ["true"], timeout=5)
    await env.client.stop_container(cid, timeout=0)
    with pytest.raises(runtime.FailedPrecondition):
        await env.client.exec_sync(cid, ["true"], timeout=5)


async def test_exec_spec_for_the_streaming_server(env: Env) -> None:
    sb = await env.sandbox()
    workdir = env.tmp / "wd"
    workdir.mkdir()
    cid = await env.container(sb, ["sleep", "30"], envs={"A": "b"}, working_dir=str(workdir))
    await env.wait_state(cid, cri.CONTAINER_RUNNING)
    spec = env.supervisor.exec_spec(cid, ["ls", "-l"])
    # Isolated: nsenter (joining the container's cgroups first) runs the command.
    assert spec.argv[-2:] == ["ls", "-l"]
    assert spec.env["A"] == "b"
    assert spec.cwd == str(workdir)
    with pytest.raises(runtime.NotFound):
        env.supervisor.exec_spec("nope", ["ls"])


async def test_exec_answers_a_streaming_url(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sleep", "30"])
    await env.wait_state(cid, cri.CONTAINER_RUNNING)
    url = await env.client.exec(cri.ExecRequest(container_id=cid, cmd=["echo", "hi"], stdout=True))
    assert env.served.runtime.streaming_url is not None
    assert url.startswith(env.served.runtime.streaming_url + "/")
    with pytest.raises(runtime.NotFound):
        await env.client.exec(cri.ExecRequest(container_id="nope", cmd=["true"], stdout=True))
    await env.client.stop_container(cid, timeout=0)
    with pytest.raises(runtime.FailedPrecondition):
        await env.client.exec(cri.ExecRequest(container_id=cid, cmd=["true"], stdout=True))


async def test_unknown_ids_are_not_found(env: Env) -> None:
    with pytest.raises(runtime.NotFound):
        await env.client.container_status("nope")
    with pytest.raises(runtime.NotFound):
        await env.client.pod_sandbox_status("nope")
    with pytest.raises(runtime.NotFound):
        await env.client.stop_container("nope", timeout=0)
    # Removing what is gone already is not an error (kubelet retries removals).
    await env.client.remove_container("nope")
    await env.client.remove_pod_sandbox("nope")


async def test_list_filters(env: Env) -> None:
    sb1 = await env.sandbox("one", labels={"app": "x"})
    sb2 = await env.sandbox("two")
    c1 = await env.container(sb1, ["sleep", "30"], labels={"tier": "web"})
    c2 = await env.container(sb2, ["true"], name="quick")
    await env.wait_state(c2, cri.CONTAINER_EXITED)
    await env.wait_state(c1, cri.CONTAINER_RUNNING)
    by_label = await env.client.list_pod_sandbox(cri.PodSandboxFilter(label_selector={"app": "x"}))
    assert [s.id for s in by_label] == [sb1[0]]
    running = await env.client.list_containers(
        cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING))
    )
    assert [c.id for c in running] == [c1]
    in_two = await env.client.list_containers(cri.ContainerFilter(pod_sandbox_id=sb2[0]))
    assert [c.id for c in in_two] == [c2]
    by_id = await env.client.list_containers(cri.ContainerFilter(id=c1))
    assert [c.labels["tier"] for c in by_id] == ["web"]
    assert len(await env.client.list_containers()) == 2


async def test_stop_pod_sandbox_leaves_no_process_behind(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "sleep 30 & sleep 30 & echo up; wait"])
    await env.wait_log(cid, lambda ls: len(ls) == 1)
    pid = int(env.supervisor.container_info(cid)["pid"])
    assert len(_procfs.group_members(pid)) >= 3
    with trio.fail_after(3):
        await env.client.stop_pod_sandbox(sb[0])
    assert _procfs.group_members(pid) == []
    assert (await env.client.container_status(cid)).state == cri.CONTAINER_EXITED
    assert (await env.client.pod_sandbox_status(sb[0])).state == cri.SANDBOX_NOTREADY
    with pytest.raises(runtime.FailedPrecondition):
        await env.client.create_container(
            sb[0],
            cri.ContainerConfig(metadata=cri.ContainerMetadata(name="late"), command=["true"]),
            sb[1],
        )
    await env.client.remove_pod_sandbox(sb[0])
    assert await env.client.list_containers() == []
    assert await env.client.list_pod_sandbox() == []


async def test_leftovers_die_with_the_main_process(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["sh", "-c", "sleep 30 & echo started"])
    pid = int(env.supervisor.container_info(cid)["pid"])
    await env.wait_state(cid, cri.CONTAINER_EXITED)
    with trio.fail_after(2):
        while _procfs.group_members(pid):  # noqa: ASYNC110 (polls /proc)
            await trio.sleep(0.02)


async def test_remove_container_removes_its_logs(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(sb, ["echo", "bye"])
    status = await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert file_sizes(Path(status.log_path).parent)
    await env.client.remove_container(cid)
    assert file_sizes(Path(status.log_path).parent) == {}
    with pytest.raises(runtime.NotFound):
        await env.client.container_status(cid)


async def test_images_are_recorded_and_may_name_the_program(env: Env) -> None:
    ref = await env.client.pull_image("docker.io/library/sh:latest")
    image = await env.client.image_status("docker.io/library/sh:latest")
    assert image is not None
    assert image.id == ref
    assert [i.id for i in await env.client.list_images()] == [ref]
    assert await env.client.image_status("never-pulled") is None
    sb = await env.sandbox()
    # No command and no args: the image's base name (`sh`) is the program.
    cid = await env.container(sb, [], image="docker.io/library/sh:latest")
    status = await env.wait_state(cid, cri.CONTAINER_EXITED)
    assert status.exit_code == 0
    # No command: the first arg is the program (kubectl run x --image=busybox -- sh -c ...).
    cid = await env.container(sb, [], args=["sh", "-c", "exit 6"], name="args")
    assert (await env.wait_state(cid, cri.CONTAINER_EXITED)).exit_code == 6
    with pytest.raises(runtime.InvalidArgument, match="not a program"):
        await env.container(sb, [], image="registry.example/no-such-program-x:1", name="bad")
    await env.client.remove_image(ref)
    assert await env.client.list_images() == []


async def test_stats(env: Env) -> None:
    sb = await env.sandbox()
    cid = await env.container(
        sb, ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; sleep 30"]
    )
    await env.wait_log(cid, lambda ls: len(ls) == 1)
    stats = await env.client.container_stats(cid)
    assert stats.attributes.id == cid
    assert stats.cpu.usage_core_nano_seconds.value > 0
    assert stats.memory.working_set_bytes.value > 0
    listed = await env.client.list_container_stats()
    assert [s.attributes.id for s in listed] == [cid]


async def test_a_new_runtime_adopts_running_containers(make_env: EnvFactory) -> None:
    first = await make_env()
    sb = await first.sandbox()
    release = first.tmp / "release"
    cid = await first.container(
        sb,
        [
            "sh",
            "-c",
            f"echo before; while [ ! -e {release} ]; do sleep 0.02; done; echo after; exit 7",
        ],
    )
    await first.wait_log(cid, lambda ls: len(ls) == 1)
    pid = int(first.supervisor.container_info(cid)["pid"])
    await first.served.stop()
    # The runtime went away; the container did not.
    assert _procfs.stat(pid) is not None
    assert not _procfs.stat(pid).zombie  # type: ignore[union-attr]

    second = await make_env()
    status = await second.client.container_status(cid)
    assert status.state == cri.CONTAINER_RUNNING
    release.touch()
    status = await second.wait_state(cid, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (7, "Error")
    assert texts(second.log_lines(cid)) == ["before", "after"]


async def test_exit_while_no_runtime_watched_is_recovered(make_env: EnvFactory) -> None:
    first = await make_env()
    sb = await first.sandbox()
    release = first.tmp / "release"
    cid = await first.container(
        sb, ["sh", "-c", f"while [ ! -e {release} ]; do sleep 0.02; done; echo gone; exit 5"]
    )
    await first.wait_state(cid, cri.CONTAINER_RUNNING)
    await first.served.stop()
    release.touch()
    exit_file = first.config.root_dir / "containers" / cid / "exit"
    with trio.fail_after(3):
        while not exit_file.exists():  # noqa: ASYNC110 (written by a process)
            await trio.sleep(0.02)
    second = await make_env()
    status = await second.wait_state(cid, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (5, "Error")
    assert texts(second.log_lines(cid)) == ["gone"]


@pytest.mark.parametrize("isolate", [False], ids=["plain"])
async def test_a_reused_pid_is_not_adopted(make_env: EnvFactory) -> None:
    # Unisolated: with cgroups the "other" process would be in the container's cgroup.
    first = await make_env(isolate=False)
    sb = await first.sandbox()
    cid = await first.container(sb, ["sleep", "30"])
    await first.wait_state(cid, cri.CONTAINER_RUNNING)
    await first.served.stop()
    # Pretend the recorded process is another one with the same pid (start time differs).
    record = first.config.root_dir / "containers" / cid / "container.json"
    data = json.loads(record.read_text())
    real_pid = data["pid"]
    data["pid_start"] += 12345
    record.write_text(json.dumps(data))
    try:
        second = await make_env(isolate=False)
        status = await second.wait_state(cid, cri.CONTAINER_EXITED)
        assert status.exit_code != 0
        # ...and the unrelated process was left alone.
        st = _procfs.stat(real_pid)
        assert st is not None
        assert not st.zombie
    finally:
        os.killpg(real_pid, signal.SIGKILL)


@needs_isolation
@pytest.mark.parametrize("isolate", [True], ids=["isolated"])
async def test_isolation_hostname_pid_namespace_and_mounts(make_env: EnvFactory) -> None:
    env = await make_env(isolate=True)
    status = await env.client.status(verbose=True)
    assert status.info["isolation"].startswith("namespaces")
    sb = await env.sandbox("web-1", hostname="web-1.example")
    host_dir = env.tmp / "volume"
    host_dir.mkdir()
    (host_dir / "data.txt").write_text("from the host\n")
    target = env.tmp / "target"
    target.mkdir()
    cid = await env.container(
        sb,
        [
            "sh",
            "-c",
            f"cat /proc/sys/kernel/hostname; echo pid=$$; cat {target}/data.txt; "
            f"touch {target}/new 2>/dev/null && echo writable || echo readonly; sleep 30",
        ],
        mounts=[cri.Mount(host_path=str(host_dir), container_path=str(target), readonly=True)],
    )
    lines = await env.wait_log(cid, lambda ls: len(ls) == 4)
    out = texts(lines)
    assert out[0] == "web-1.example"
    # Its own PID namespace: only the wrapper's few setup commands ran before it.
    assert int(out[1].removeprefix("pid=")) < 10
    assert out[2:] == ["from the host", "readonly"]
    # The host's own view is unchanged.
    assert list(target.iterdir()) == []
    assert os.uname().nodename != "web-1.example"
    # Exec joins the container's namespaces.
    result = await env.client.exec_sync(cid, ["cat", f"{target}/data.txt"], timeout=5)
    assert result.stdout == b"from the host\n"
    result = await env.client.exec_sync(cid, ["cat", "/proc/sys/kernel/hostname"], timeout=5)
    assert result.stdout == b"web-1.example\n"
    pid = int(env.supervisor.container_info(cid)["pid"])
    with trio.fail_after(3):
        await env.client.stop_pod_sandbox(sb[0])
    assert _procfs.group_members(pid) == []


@needs_isolation
@pytest.mark.parametrize("isolate", [True], ids=["isolated"])
async def test_memory_limit_oom_kills(make_env: EnvFactory) -> None:
    env = await make_env(isolate=True)
    isolation = (await env.client.status(verbose=True)).info["isolation"]
    if "cgroup-v1" not in isolation or "memory" not in env.supervisor.isolation.cgroups.parents:
        pytest.skip(f"no writable cgroup v1 memory hierarchy: {isolation}")
    sb = await env.sandbox()
    cid = await env.container(
        sb,
        [sys.executable, "-c", "x = bytearray(256 * 1024 * 1024); print(len(x))"],
        linux=cri.LinuxContainerConfig(
            resources=cri.LinuxContainerResources(memory_limit_in_bytes=64 * 1024 * 1024)
        ),
    )
    status = await env.wait_state(cid, cri.CONTAINER_EXITED, within=10)
    assert (status.reason, status.exit_code) == ("OOMKilled", 137)


@pytest.mark.parametrize("isolate", [False], ids=["plain"])
async def test_unisolated_containers_say_mounts_are_unavailable(make_env: EnvFactory) -> None:
    env = await make_env(isolate=False)
    sb = await env.sandbox()
    cid = await env.container(
        sb,
        ["sleep", "30"],
        mounts=[cri.Mount(host_path="/tmp", container_path="/data")],
    )
    status = await env.client.container_status(cid)
    assert "mounts unavailable" in status.message
    assert "/data not mounted" in status.message


async def test_second_serve_over_running_runtime_dir_fails_cleanly(
    env: Env, nursery: trio.Nursery
) -> None:
    # A stale socket file from a crashed runtime does not stop a new one from serving.
    await env.served.stop()
    env.config.socket_path.touch()
    served = await serve(nursery, env.config)
    assert (await env.client.version()).runtime_name == "arktos-process"
    await served.stop()
