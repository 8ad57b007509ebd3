"""Exec into a real process-runtime container through the agent server, and its logs.

The runtime serves CRI on a unix socket and its streaming server on loopback; the agent
server reaches the container through a locator over a RuntimeClient, as the pod manager's
does, so the whole path below the API server runs for real (plain and isolated).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio

from arktos_lite.agent import _server as agent_server
from arktos_lite.runtime import RuntimeClient, _stream as stream
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import ProcessRuntimeConfig

from ..runtime._process import container_config, sandbox_config, serve
from ._exec import collect

ADMIN = "admin-token"


class Reviews:
    """The API server's TokenReview answer for the admin token, without an API server."""

    async def request(self, method: str, path: str, *, json: object = None) -> object:
        token = json["spec"]["token"]  # type: ignore[index]
        if token != ADMIN:
            return {"status": {"authenticated": False}}
        user = {"username": "admin", "groups": ["system:masters"]}
        return {"status": {"authenticated": True, "user": user}}


@dataclasses.dataclass
class OneContainer:
    runtime: RuntimeClient
    container_id: str
    log_path: Path

    async def locate(
        self, *, tenant: str, namespace: str, pod: str, container: str, previous: bool
    ) -> agent_server.LocatedContainer:
        if (tenant, namespace, pod, container) != ("system", "default", "pod", "c"):
            raise LookupError(f"container {container} of pod {namespace}/{pod} not found")
        status = await self.runtime.container_status(self.container_id)
        return agent_server.LocatedContainer(
            runtime=self.runtime,
            container_id=self.container_id,
            log_path=self.log_path,
            running=status.state == cri.CONTAINER_RUNNING,
        )


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cri-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(
    params=[
        pytest.param(False, id="plain"),
        pytest.param(
            True,
            id="isolated",
            marks=pytest.mark.skipif(
                os.geteuid() != 0 or shutil.which("unshare") is None,
                reason="namespaces need root and unshare",
            ),
        ),
    ]
)
async def agent(
    request: pytest.FixtureRequest, tmp_path: Path, short_dir: Path, nursery: trio.Nursery
) -> AsyncIterator[tuple[str, OneContainer]]:
    config = ProcessRuntimeConfig(
        root_dir=tmp_path / "runtime",
        socket_path=short_dir / "cri.sock",
        isolate=bool(request.param),
    )
    served = await serve(nursery, config)
    client = RuntimeClient(f"unix://{config.socket_path}")
    log_dir = tmp_path / "pods" / "pod" / "logs"
    sandbox = sandbox_config("pod", log_dir)
    sandbox_id = await client.run_pod_sandbox(sandbox)
    command = ["sh", "-c", "echo started; exec sleep 30"]
    container_id = await client.create_container(
        sandbox_id, container_config("c", command), sandbox
    )
    await client.start_container(container_id)
    status = await client.container_status(container_id)
    located = OneContainer(client, container_id, Path(status.log_path))
    server = agent_server.AgentServer(
        Reviews(),  # type: ignore[arg-type]
        locator=located,
        root_dir=tmp_path / "agent",
        host="127.0.0.1",
        port=0,
    )
    port = await nursery.start(server.run)
    try:
        yield f"127.0.0.1:{port}", located
    finally:
        await client.remove_pod_sandbox(sandbox_id)
        await served.stop()
        await client.aclose()


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_exec_and_exit_code(agent: tuple[str, OneContainer]) -> None:
    address, _container = agent
    url = (
        f"wss://{address}/exec/system/default/pod/c?command=sh&command=-c"
        "&command=echo+hi%3B+echo+err+%3E%262%3B+exit+7&stdout=1&stderr=1"
    )
    with trio.fail_after(10):
        async with stream.connect(
            url,
            subprotocols=[stream.V5],
            ssl_context=insecure(),
            headers=[("Authorization", f"Bearer {ADMIN}")],
        ) as ws:
            outcome = await collect(ws)
    assert (outcome.stdout, outcome.stderr) == (b"hi\n", b"err\n")
    assert outcome.status is not None
    assert outcome.status.exit_code == 7


async def test_exec_with_stdin(agent: tuple[str, OneContainer]) -> None:
    address, _container = agent
    url = f"wss://{address}/exec/system/default/pod/c?command=cat&stdin=1&stdout=1"
    with trio.fail_after(10):
        async with stream.connect(
            url,
            subprotocols=[stream.V5],
            ssl_context=insecure(),
            headers=[("Authorization", f"Bearer {ADMIN}")],
        ) as ws:
            await ws.send_message(stream.encode(stream.Channel.STDIN, b"line\n"))
            await ws.send_message(stream.close_message(stream.Channel.STDIN))
            outcome = await collect(ws)
    assert outcome.stdout == b"line\n"
    assert outcome.status == stream.ExitStatus(0)


async def test_logs_follow_until_the_container_stops(agent: tuple[str, OneContainer]) -> None:
    address, container = agent
    url = f"https://{address}/containerLogs/system/default/pod/c"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(verify=insecure(), headers=headers) as http:
        with trio.fail_after(10):
            while (await http.get(url)).text != "started\n":  # noqa: ASYNC110
                await trio.sleep(0.05)
            async with http.stream("GET", url, params={"follow": "true"}) as response:
                chunks = response.aiter_bytes()
                assert await anext(chunks) == b"started\n"
                await container.runtime.stop_container(container.container_id, timeout=0)
                assert [chunk async for chunk in chunks] == []
        missing = await http.get(url.removesuffix("/c") + "/nope")
        assert missing.status_code == 404
        assert "container nope of pod default/pod not found" in missing.json()["message"]
