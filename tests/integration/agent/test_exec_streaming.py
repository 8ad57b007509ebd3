"""The process runtime's streaming server: one-time exec URLs served over channel.k8s.io."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio_websocket

from arktos_lite.runtime import _errors as errors, _stream as stream
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import _streaming as streaming

from ._exec import StubSupervisor, collect


@pytest.fixture
async def server() -> AsyncIterator[streaming.StreamingServer]:
    server = streaming.StreamingServer(StubSupervisor())
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield server
        nursery.cancel_scope.cancel()


def request(*cmd: str, container: str = "c1", **flags: bool) -> cri.ExecRequest:
    options = {"stdout": True, "stderr": True, **flags}
    if options.get("tty"):
        options["stderr"] = False
    return cri.ExecRequest(container_id=container, cmd=list(cmd), **options)


async def test_echo_and_exit_code(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("sh", "-c", "echo out; echo err >&2; exit 3"))
    assert url.startswith(f"{server.base_url}/exec/")
    with trio.fail_after(5):
        async with stream.connect(url, subprotocols=[stream.V5]) as ws:
            assert ws.subprotocol == stream.V5
            outcome = await collect(ws)
    assert outcome.stdout == b"out\n"
    assert outcome.stderr == b"err\n"
    assert outcome.status == stream.ExitStatus(3, outcome.status.message if outcome.status else "")


async def test_success_and_v4(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("echo", "hi"))
    with trio.fail_after(5):
        async with stream.connect(url, subprotocols=[stream.V4]) as ws:
            assert ws.subprotocol == stream.V4
            outcome = await collect(ws)
    assert outcome.stdout == b"hi\n"
    assert outcome.status == stream.ExitStatus(0)


async def test_stdin_until_close_signal(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("cat", stdin=True))
    with trio.fail_after(5):
        async with stream.connect(url, subprotocols=[stream.V5]) as ws:
            await ws.send_message(stream.encode(stream.Channel.STDIN, b"hello "))
            await ws.send_message(stream.encode(stream.Channel.STDIN, b"world\n"))
            await ws.send_message(stream.close_message(stream.Channel.STDIN))
            outcome = await collect(ws)
    assert outcome.stdout == b"hello world\n"
    assert outcome.status == stream.ExitStatus(0)


async def test_tty_with_resize(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("sh", "-c", "sleep 0.3; stty size; exit 2", tty=True))
    with trio.fail_after(5):
        async with stream.connect(url, subprotocols=[stream.V5]) as ws:
            await ws.send_message(stream.resize_message(stream.TerminalSize(100, 30)))
            outcome = await collect(ws)
    assert outcome.stdout.strip() == b"30 100"
    assert outcome.stderr == b""
    assert outcome.status is not None
    assert outcome.status.exit_code == 2


async def test_tty_stdin(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("sh", "-c", "read x; echo got $x", tty=True, stdin=True))
    with trio.fail_after(5):
        async with stream.connect(url, subprotocols=[stream.V5]) as ws:
            await ws.send_message(stream.encode(stream.Channel.STDIN, b"abc\r"))
            outcome = await collect(ws)
    assert b"got abc" in outcome.stdout
    assert outcome.status == stream.ExitStatus(0)


async def test_a_url_serves_once(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("true"))
    async with stream.connect(url, subprotocols=[stream.V5]) as ws:
        await collect(ws)
    with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
        async with stream.connect(url, subprotocols=[stream.V5]):
            pass
    assert rejected.value.status_code == 404


async def test_unsupported_subprotocol_is_rejected(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("true"))
    with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
        async with stream.connect(url, subprotocols=["channel.k8s.io"]):
            pass
    assert rejected.value.status_code == 400


async def test_missing_container_is_reported_on_the_error_channel(
    server: streaming.StreamingServer,
) -> None:
    url = server.prepare_exec(request("true", container="gone"))
    async with stream.connect(url, subprotocols=[stream.V5]) as ws:
        outcome = await collect(ws)
    assert outcome.status is not None
    assert outcome.status.exit_code is None
    assert "gone not found" in outcome.status.message


async def test_unknown_program_is_reported(server: streaming.StreamingServer) -> None:
    url = server.prepare_exec(request("/no/such/program"))
    async with stream.connect(url, subprotocols=[stream.V5]) as ws:
        outcome = await collect(ws)
    assert outcome.status is not None
    assert "cannot run /no/such/program" in outcome.status.message


async def test_client_leaving_kills_the_process_group(
    server: streaming.StreamingServer, tmp_path: trio.Path
) -> None:
    pidfile = tmp_path / "pid"
    url = server.prepare_exec(request("sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"))
    async with stream.connect(url, subprotocols=[stream.V5]):
        with trio.fail_after(5):
            while not pidfile.exists() or not pidfile.read_text().strip():  # noqa: ASYNC110
                await trio.sleep(0.02)
    pid = int(pidfile.read_text())
    with trio.fail_after(5):
        while _alive(pid):  # noqa: ASYNC110
            await trio.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_prepare_checks_the_request() -> None:
    server = streaming.StreamingServer(StubSupervisor())
    with pytest.raises(errors.Unavailable):
        server.prepare_exec(request("true"))


async def test_prepare_rejects_bad_requests(server: streaming.StreamingServer) -> None:
    with pytest.raises(errors.InvalidArgument, match="command"):
        server.prepare_exec(request())
    with pytest.raises(errors.InvalidArgument, match="stdin, stdout or stderr"):
        server.prepare_exec(request("true", stdout=False, stderr=False))
