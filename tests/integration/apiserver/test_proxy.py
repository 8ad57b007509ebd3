"""Pods' log and exec through the API server to a real agent server, authorized by tenant.

An AgentServer (fake locator, a runtime whose exec goes to a real streaming server running
host commands) serves a Node; pods bound to it are read and exec'd into through the API
server with each user's token, over both URL forms.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio_websocket

from arktos_lite import apiserver, client
from arktos_lite.agent import _server as agent_server
from arktos_lite.runtime import _stream as stream
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.process import _streaming as streaming

from ..agent._exec import StubSupervisor, collect
from .conftest import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    BOB_TOKEN,
    Server,
    created,
    make_tenant,
)

T = "2026-01-02T03:04:0{}.000000000Z"


class ExecOnlyRuntime:
    """A runtime that only does exec, through a real streaming server."""

    def __init__(self, server: streaming.StreamingServer) -> None:
        self.server = server

    async def exec(self, request: cri.ExecRequest) -> str:
        return self.server.prepare_exec(request)


@dataclasses.dataclass
class Located:
    """Containers by (tenant, namespace, pod, container, previous)."""

    containers: dict[tuple[str, str, str, str, bool], agent_server.LocatedContainer]

    async def locate(
        self, *, tenant: str, namespace: str, pod: str, container: str, previous: bool
    ) -> agent_server.LocatedContainer:
        try:
            return self.containers[(tenant, namespace, pod, container, previous)]
        except KeyError:
            raise LookupError(f"container {container} of pod {namespace}/{pod} not found") from None


@dataclasses.dataclass
class Setup:
    server: Server
    agent_port: int
    log_path: pathlib.Path
    locator: Located
    ca_pem: bytes | None = None

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = True
        if self.ca_pem is not None:
            verify = ssl.create_default_context(cadata=self.ca_pem.decode())
        return httpx.AsyncClient(
            base_url=self.server.url, headers=headers, timeout=10, verify=verify
        )


@contextlib.asynccontextmanager
async def open_setup(
    tmp_path: pathlib.Path,
    *,
    tls: apiserver.TLSFiles | None = None,
    ca_pem: bytes | None = None,
) -> AsyncIterator[Setup]:
    """An API server, a runtime streaming server and an agent serving node n1, with pods
    `web` (container app, whose log says hello and world), `two` (containers a and b) and
    `pending` (unscheduled) in tenant t1, and `sys` (container app) in the system tenant."""
    log_path = tmp_path / "logs" / "0.log"
    log_path.parent.mkdir()
    log_path.write_text(f"{T.format(1)} stdout F hello\n{T.format(2)} stderr F world\n")
    async with Server.open(tls=tls) as server, trio.open_nursery() as nursery:
        runtime_streaming = streaming.StreamingServer(StubSupervisor())
        await nursery.start(runtime_streaming.run)
        runtime = ExecOnlyRuntime(runtime_streaming)
        located = agent_server.LocatedContainer(
            runtime=runtime,  # type: ignore[arg-type]
            container_id="c1",
            log_path=log_path,
            running=True,
        )
        previous_log = tmp_path / "logs" / "previous.log"
        previous_log.write_text(f"{T.format(0)} stdout F crashed\n")
        locator = Located(
            {
                ("t1", "default", "web", "app", False): located,
                ("system", "default", "sys", "app", False): located,
                ("t1", "default", "vm", "guest", False): located,
                ("t1", "default", "web", "app", True): dataclasses.replace(
                    located, container_id="c0", log_path=previous_log, running=False
                ),
            }
        )
        api = client.Client(client.Config(server=server.url, token=ADMIN_TOKEN, ca_data=ca_pem))
        agent = agent_server.AgentServer(
            api, locator=locator, root_dir=tmp_path / "agent", host="127.0.0.1", port=0
        )
        port = await nursery.start(agent.run)
        setup = Setup(
            server=server, agent_port=port, log_path=log_path, locator=locator, ca_pem=ca_pem
        )
        async with setup.client(ADMIN_TOKEN) as admin:
            await populate(admin, port)
        try:
            yield setup
        finally:
            await api.aclose()
            nursery.cancel_scope.cancel()


async def populate(admin: httpx.AsyncClient, port: int) -> None:
    await make_tenant(admin, "t1")
    await make_tenant(admin, "t2")
    await created(admin, "/api/v1/nodes", {"metadata": {"name": "n1"}})
    node = (await admin.get("/api/v1/nodes/n1")).json()
    node["status"] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }
    put = await admin.put("/api/v1/nodes/n1/status", json=node)
    assert put.status_code == 200, put.text
    await created(
        admin,
        "/api/v1/namespaces/default/pods",
        {
            "metadata": {"name": "sys"},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "busybox"}]},
        },
    )
    vm = {"name": "guest", "image": "cirros", "keyPairName": "key"}
    await created(
        admin,
        "/api/v1/tenants/t1/namespaces/default/pods",
        {"metadata": {"name": "vm"}, "spec": {"nodeName": "n1", "virtualMachine": vm}},
    )
    for name, node_name, containers in [
        ("web", "n1", ["app"]),
        ("two", "n1", ["a", "b"]),
        ("pending", None, ["app"]),
    ]:
        spec: dict[str, object] = {
            "containers": [{"name": c, "image": "busybox"} for c in containers]
        }
        if node_name:
            spec["nodeName"] = node_name
        await created(
            admin,
            "/api/v1/tenants/t1/namespaces/default/pods",
            {"metadata": {"name": name}, "spec": spec},
        )


@pytest.fixture
async def setup(tmp_path: pathlib.Path) -> AsyncIterator[Setup]:
    async with open_setup(tmp_path) as started:
        yield started


SHORT = "/api/v1/namespaces/default/pods"
LONG = "/api/v1/tenants/t1/namespaces/default/pods"


async def test_logs_through_both_paths(setup: Setup) -> None:
    async with setup.client(ALICE_TOKEN) as alice, setup.client(ADMIN_TOKEN) as admin:
        short = await alice.get(f"{SHORT}/web/log")
        assert short.status_code == 200, short.text
        assert short.text == "hello\nworld\n"
        assert short.headers["content-type"].startswith("text/plain")
        long = await admin.get(f"{LONG}/web/log", params={"container": "app", "tailLines": "1"})
        assert long.text == "world\n"
        stamped = await admin.get(f"{LONG}/web/log", params={"timestamps": "true"})
        assert stamped.text.splitlines()[0] == f"{T.format(1)} hello"


async def test_a_vm_pods_log_is_its_serial_console(setup: Setup) -> None:
    """A VM pod has no containers in its spec: its one container, named after the VM,
    is what the agent logs the serial console under."""
    async with setup.client(ALICE_TOKEN) as alice:
        default = await alice.get(f"{SHORT}/vm/log")
        assert default.status_code == 200, default.text
        assert default.text == "hello\nworld\n"
        named = await alice.get(f"{SHORT}/vm/log", params={"container": "guest"})
        assert named.text == "hello\nworld\n"


async def test_log_errors(setup: Setup) -> None:
    async with setup.client(ALICE_TOKEN) as alice:
        missing = await alice.get(f"{SHORT}/nope/log")
        assert missing.status_code == 404
        pending = await alice.get(f"{SHORT}/pending/log")
        assert pending.status_code == 400
        assert pending.json()["message"] == "pod pending does not have a host assigned"
        wrong = await alice.get(f"{SHORT}/web/log", params={"container": "x"})
        assert wrong.status_code == 400
        assert wrong.json()["message"] == "container x is not valid for pod web"
        choose = await alice.get(f"{SHORT}/two/log")
        assert choose.status_code == 400
        assert choose.json()["message"] == (
            "a container name must be specified for pod two, choose one of: [a b]"
        )
        # The agent knows no such container: its 404 comes through as a Status.
        gone = await alice.get(f"{SHORT}/two/log", params={"container": "a"})
        assert gone.status_code == 404
        assert "container a of pod default/two not found" in gone.json()["message"]
        bad = await alice.get(f"{SHORT}/web/log", params={"tailLines": "x"})
        assert bad.status_code == 400
        assert "tailLines" in bad.json()["message"]
        put = await alice.put(f"{SHORT}/web/log", json={})
        assert put.status_code == 405


async def test_other_tenants_cannot_read_logs(setup: Setup) -> None:
    async with setup.client(BOB_TOKEN) as bob:
        assert (await bob.get(f"{SHORT}/web/log")).status_code == 404
        forbidden = await bob.get(f"{LONG}/web/log")
        assert forbidden.status_code == 403
        assert forbidden.json()["reason"] == "Forbidden"


def exec_url(setup: Setup, base: str, pod: str, *command: str, **flags: str) -> str:
    query = httpx.QueryParams(
        [("command", c) for c in command]
        + [("stdout", "true"), ("stderr", "true")]
        + list(flags.items())
    )
    return f"{setup.server.url}{base}/{pod}/exec?{query}"


async def test_exec_through_the_api_server(setup: Setup) -> None:
    url = exec_url(setup, SHORT, "web", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    with trio.fail_after(10):
        async with stream.connect(
            url, subprotocols=[stream.V5], headers=[("Authorization", f"Bearer {ALICE_TOKEN}")]
        ) as ws:
            assert ws.subprotocol == stream.V5
            outcome = await collect(ws)
    assert outcome.stdout == b"hi\n"
    assert outcome.stderr == b"oops\n"
    assert outcome.status is not None
    assert outcome.status.exit_code == 3


async def test_exec_with_stdin_and_v4(setup: Setup) -> None:
    url = exec_url(setup, LONG, "web", "cat", stdin="true")
    with trio.fail_after(10):
        async with stream.connect(
            url, subprotocols=[stream.V4], headers=[("Authorization", f"Bearer {ADMIN_TOKEN}")]
        ) as ws:
            assert ws.subprotocol == stream.V4
            await ws.send_message(stream.encode(stream.Channel.STDIN, b"typed\n"))
            frame = stream.decode(await ws.get_message())
            assert frame == stream.Frame(stream.Channel.STDOUT, b"typed\n")


async def test_exec_refusals_are_statuses(setup: Setup) -> None:
    cases = [
        (BOB_TOKEN, LONG, "web", 403),
        (BOB_TOKEN, SHORT, "web", 404),
        (ALICE_TOKEN, SHORT, "pending", 400),
        ("wrong", SHORT, "web", 401),
    ]
    for token, base, pod, code in cases:
        url = exec_url(setup, base, pod, "true")
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with stream.connect(
                url, subprotocols=[stream.V5], headers=[("Authorization", f"Bearer {token}")]
            ):
                pass
        assert rejected.value.status_code == code, (token, base, pod)


async def test_exec_without_upgrade_asks_for_one(setup: Setup) -> None:
    async with setup.client(ALICE_TOKEN) as alice:
        response = await alice.post(f"{SHORT}/web/exec", params={"command": "true"})
        assert response.status_code == 400
        assert response.json()["message"] == "Upgrade request required"
        missing = await alice.post(f"{SHORT}/nope/exec", params={"command": "true"})
        assert missing.status_code == 404


async def test_token_reviews(setup: Setup) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
    path = "/apis/authentication.k8s.io/v1/tokenreviews"
    async with setup.client(ADMIN_TOKEN) as admin, setup.client(ALICE_TOKEN) as alice:
        answer = await admin.post(path, json={**review, "spec": {"token": ALICE_TOKEN}})
        assert answer.status_code == 201, answer.text
        status = answer.json()["status"]
        assert status["authenticated"] is True
        assert status["user"]["username"] == "alice"
        assert status["user"]["extra"] == {agent_server.TENANT_EXTRA: ["t1"]}
        unknown = await admin.post(path, json={**review, "spec": {"token": "nope"}})
        assert unknown.json()["status"]["authenticated"] is False
        assert (await alice.post(path, json={**review, "spec": {"token": "x"}})).status_code == 403
        listed = await admin.get("/apis/authentication.k8s.io/v1")
        assert [r["name"] for r in listed.json()["resources"]] == ["tokenreviews"]


async def test_the_agent_wants_an_admin_or_the_api_server(setup: Setup) -> None:
    url = f"https://127.0.0.1:{setup.agent_port}/containerLogs/t1/default/web/app"
    async with httpx.AsyncClient(verify=False) as http:
        assert (await http.get(f"https://127.0.0.1:{setup.agent_port}/healthz")).text == "ok"
        assert (await http.get(url)).status_code == 401
        alice = await http.get(url, headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
        assert alice.status_code == 403
        admin = await http.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.text == "hello\nworld\n"
        loopback = setup.server.api.api.authenticator.loopback_token
        internal = await http.get(url, headers={"Authorization": f"Bearer {loopback}"})
        assert internal.status_code == 200


async def test_previous_logs(setup: Setup) -> None:
    async with setup.client(ALICE_TOKEN) as alice:
        response = await alice.get(f"{SHORT}/web/log", params={"previous": "true"})
        assert response.text == "crashed\n"


async def test_follow_streams_until_the_container_stops(setup: Setup) -> None:
    received = bytearray()
    async with setup.client(ALICE_TOKEN) as alice:
        with trio.fail_after(10):
            async with alice.stream(
                "GET", f"{SHORT}/web/log", params={"follow": "true"}
            ) as response:
                assert response.status_code == 200
                chunks = response.aiter_bytes()
                while b"world\n" not in received:
                    received += await anext(chunks)
                with setup.log_path.open("a") as log:
                    log.write(f"{T.format(3)} stdout F more\n")
                while b"more\n" not in received:
                    received += await anext(chunks)
                key = ("t1", "default", "web", "app", False)
                setup.locator.containers[key] = dataclasses.replace(
                    setup.locator.containers[key], running=False
                )
                async for chunk in chunks:
                    received += chunk
    assert received == b"hello\nworld\nmore\n"
