"""Container probes with kubelet's semantics, on trio's mock clock and real sockets."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import ssl
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from arktos_lite import runtime
from arktos_lite.agent import _probes as probes

Script = Callable[[Sequence[str], float], Any]


class FakeRuntime:
    """Answers `exec_sync` from a script: an exit code, an exception, or "hang"."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[tuple[float, tuple[str, ...]]] = []

    async def exec_sync(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> runtime.ExecResult:
        assert container_id == "cid"
        self.calls.append((trio.current_time(), tuple(cmd)))
        answer = self.script(cmd, timeout)
        if answer == "hang":
            await trio.sleep_forever()
        if isinstance(answer, Exception):
            raise answer
        return runtime.ExecResult(stdout=f"out {cmd[-1]}".encode(), stderr=b"", exit_code=answer)

    def times(self, command: str) -> list[float]:
        return [at for at, cmd in self.calls if cmd[-1] == command]


def results(**answers: Sequence[Any]) -> Script:
    """A script: the n-th exec of `probe <name>` answers `answers[name][n]`, then the last."""
    seen: dict[str, int] = {}

    def script(cmd: Sequence[str], timeout: float) -> Any:
        name = cmd[-1]
        index = seen.get(name, 0)
        seen[name] = index + 1
        sequence = answers[name]
        return sequence[min(index, len(sequence) - 1)]

    return script


def exec_probe(name: str, **settings: int) -> dict[str, Any]:
    return {"exec": {"command": ["probe", name]}, **settings}


@dataclasses.dataclass
class Watched:
    prober: probes.ContainerProber
    runtime: FakeRuntime
    changes: list[tuple[float, bool, bool, bool]]


@pytest.fixture
async def watch(nursery: trio.Nursery) -> Callable[..., Watched]:
    def start(script: Script, **container_probes: dict[str, Any]) -> Watched:
        fake = FakeRuntime(script)
        changes: list[tuple[float, bool, bool, bool]] = []
        container = {"name": "c", **{f"{k}Probe": v for k, v in container_probes.items()}}

        def on_change() -> None:
            changes.append((trio.current_time(), prober.started, prober.ready, prober.live))

        prober = probes.ContainerProber(
            pod={"metadata": {"name": "p", "namespace": "ns", "tenant": "t"}},
            container=container,
            container_id="cid",
            runtime=cast(runtime.Runtime, fake),
            pod_ip="127.0.0.1",
            on_change=on_change,
        )
        nursery.start_soon(prober.run)
        return Watched(prober, fake, changes)

    return start


async def test_without_probes_everything_is_true_at_once(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    watched = watch(results())
    await trio.sleep(100)
    assert (watched.prober.started, watched.prober.ready, watched.prober.live) == (True,) * 3
    assert watched.changes == []
    assert watched.runtime.calls == []


async def test_readiness_starts_false_and_follows_thresholds(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    # success at 0 and 10, failures from 20: not ready after the third failure (t=40).
    watched = watch(
        results(ready=[0, 0, 1, 1, 1, 0]),
        readiness=exec_probe("ready", periodSeconds=10),
    )
    assert not watched.prober.ready
    assert watched.prober.started
    await trio.sleep(75)
    # A success makes it ready again at once (successThreshold 1).
    assert watched.changes == [
        (0.0, True, True, True),
        (40.0, True, False, True),
        (50.0, True, True, True),
    ]
    assert watched.runtime.times("ready") == [0, 10, 20, 30, 40, 50, 60, 70]


async def test_success_threshold_and_initial_delay(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    watched = watch(
        results(ready=[0]),
        readiness=exec_probe("ready", periodSeconds=5, successThreshold=3, initialDelaySeconds=7),
    )
    await trio.sleep(30)
    assert watched.runtime.times("ready")[:3] == [7, 12, 17]
    assert watched.changes == [(17.0, True, True, True)]


async def test_liveness_failure_threshold_stops_probing(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    watched = watch(
        results(alive=[0, 1, 1, 0, 1, 1, 1]),
        liveness=exec_probe("alive", periodSeconds=2, failureThreshold=3),
    )
    await trio.sleep(60)
    # Failures at 2, 4 do not count (a success at 6 resets); 8, 10, 12 do.
    assert watched.changes == [(12.0, True, False, False)]
    assert not watched.prober.live
    assert watched.prober.failure == "Liveness probe failed: out alive"
    assert watched.runtime.times("alive") == [0, 2, 4, 6, 8, 10, 12]


async def test_startup_probe_gates_liveness_and_readiness(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    watched = watch(
        results(start=[1, 1, 0], alive=[0], ready=[0]),
        startup=exec_probe("start", periodSeconds=3, failureThreshold=5),
        liveness=exec_probe("alive", periodSeconds=10, initialDelaySeconds=2),
        readiness=exec_probe("ready", periodSeconds=10),
    )
    assert not watched.prober.started
    assert not watched.prober.ready
    await trio.sleep(30)
    assert watched.runtime.times("start") == [0, 3, 6]
    # Neither ran before the startup probe passed at t=6; then both start right away.
    assert watched.runtime.times("alive")[0] == 6
    assert watched.runtime.times("ready")[0] == 6
    assert watched.changes == [(6.0, True, False, True), (6.0, True, True, True)]


async def test_startup_failure_means_not_live(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    watched = watch(
        results(start=[1], alive=[0]),
        startup=exec_probe("start", periodSeconds=1, failureThreshold=4),
        liveness=exec_probe("alive"),
    )
    await trio.sleep(20)
    assert watched.changes == [(3.0, False, False, False)]
    assert watched.prober.failure == "Startup probe failed: out start"
    assert watched.runtime.times("alive") == []
    assert len(watched.runtime.times("start")) == 4


async def test_exec_timeouts_fail_and_runtime_errors_do_not_count(
    autojump_clock: trio.testing.MockClock, watch: Callable[..., Watched]
) -> None:
    watched = watch(
        results(
            alive=[
                runtime.NotFound("no such container"),
                runtime.Unavailable("runtime down"),
                runtime.DeadlineExceeded("too slow"),
                "hang",
            ]
        ),
        liveness=exec_probe("alive", periodSeconds=10, failureThreshold=2, timeoutSeconds=3),
    )
    await trio.sleep(60)
    # Errors at 0 and 10 are thrown away; the timeouts at 20 and 30 are two failures.
    assert watched.changes == [(35.0, True, False, False)]
    assert watched.prober.failure == 'Liveness probe failed: command "probe alive" timed out'


async def test_run_is_cancelled_cleanly(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeRuntime(results(alive=["hang"]))
    prober = probes.ContainerProber(
        pod={},
        container={"name": "c", "livenessProbe": exec_probe("alive")},
        container_id="cid",
        runtime=cast(runtime.Runtime, fake),
        pod_ip="127.0.0.1",
        on_change=lambda: None,
    )
    with trio.move_on_after(5):
        await prober.run()
    assert prober.live


# --- httpGet, tcpSocket and grpc against real servers ------------------------------------


@dataclasses.dataclass
class HttpServer:
    port: int
    requests: list[tuple[str, dict[str, str]]]


@pytest.fixture
async def http_server(nursery: trio.Nursery) -> HttpServer:
    requests: list[tuple[str, dict[str, str]]] = []
    port_box: list[int] = []

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode()
        line, *header_lines = head.split("\r\n")
        target = line.split()[1]
        headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        requests.append((target, headers))
        extra = ""
        if target == "/ok":
            status = "200 OK"
        elif target == "/teapot":
            status = "418 I'm a teapot"
        elif target == "/fail":
            status = "500 Internal Server Error"
        elif target == "/moved":
            status, extra = "302 Found", "Location: /ok\r\n"
        elif target == "/away":
            status, extra = "302 Found", "Location: http://elsewhere.invalid/fail\r\n"
        elif target == "/loop":
            status, extra = "302 Found", "Location: /loop\r\n"
        elif target == "/slow":
            await trio.sleep(5)
            status = "200 OK"
        else:
            status = "404 Not Found"
        response = f"HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n{extra}\r\nhi"
        await stream.send_all(response.encode())
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    port_box.append(listeners[0].socket.getsockname()[1])
    return HttpServer(port_box[0], requests)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def once(probe: dict[str, Any], container: dict[str, Any] | None = None, timeout: float = 1):  # noqa: ASYNC109
    return await probes.probe_once(
        probe,
        runtime=cast(runtime.Runtime, FakeRuntime(results())),
        container_id="cid",
        pod_ip="127.0.0.1",
        container=container or {"name": "c"},
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("path", "result", "message"),
    [
        ("/ok", probes.ProbeResult.SUCCESS, "HTTP probe succeeded with statuscode: 200"),
        ("/moved", probes.ProbeResult.SUCCESS, "HTTP probe succeeded with statuscode: 200"),
        # kubelet does not follow a redirect to another host: the 302 itself is a success.
        ("/away", probes.ProbeResult.SUCCESS, "HTTP probe succeeded with statuscode: 302"),
        ("/teapot", probes.ProbeResult.FAILURE, "HTTP probe failed with statuscode: 418"),
        ("/fail", probes.ProbeResult.FAILURE, "HTTP probe failed with statuscode: 500"),
    ],
)
async def test_http_get_status_codes(
    http_server: HttpServer, path: str, result: probes.ProbeResult, message: str
) -> None:
    outcome = await once({"httpGet": {"path": path, "port": http_server.port}})
    assert outcome == probes.ProbeOutcome(result, message)


async def test_http_get_headers_named_port_and_host(http_server: HttpServer) -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": http_server.port}]}
    outcome = await once(
        {
            "httpGet": {
                "path": "ok",
                "port": "http",
                "host": "127.0.0.1",
                "scheme": "HTTP",
                "httpHeaders": [{"name": "X-Probe", "value": "yes"}],
            }
        },
        container,
    )
    assert outcome.result is probes.ProbeResult.SUCCESS
    target, headers = http_server.requests[-1]
    assert target == "/ok"
    assert headers["x-probe"] == "yes"
    assert headers["user-agent"].startswith("kube-probe/")


async def test_http_get_failures(http_server: HttpServer) -> None:
    slow = await once({"httpGet": {"path": "/slow", "port": http_server.port}}, timeout=0.3)
    assert slow.result is probes.ProbeResult.FAILURE
    assert "context deadline exceeded" in slow.message
    loop = await once({"httpGet": {"path": "/loop", "port": http_server.port}})
    assert loop.result is probes.ProbeResult.FAILURE
    assert "stopped after 10 redirects" in loop.message
    refused = await once({"httpGet": {"path": "/", "port": free_port()}})
    assert refused.result is probes.ProbeResult.FAILURE
    unknown_port = await once({"httpGet": {"path": "/", "port": "metrics"}})
    assert unknown_port.result is probes.ProbeResult.UNKNOWN
    assert "couldn't find port: metrics" in unknown_port.message


async def test_tcp_socket(nursery: trio.Nursery) -> None:
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, _close_at_once, 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    assert (await once({"tcpSocket": {"port": port}})).result is probes.ProbeResult.SUCCESS
    closed = free_port()
    refused = await once({"tcpSocket": {"port": closed, "host": "127.0.0.1"}})
    assert refused.result is probes.ProbeResult.FAILURE
    assert refused.message.startswith(f"dial tcp 127.0.0.1:{closed}: ")


async def _close_at_once(stream: trio.SocketStream) -> None:
    await stream.aclose()


@pytest.fixture
def grpc_health_server() -> Any:
    statuses = {"": 1, "sick": 2}

    def check(request: bytes, context: grpc.ServicerContext) -> bytes:
        service = request[2:].decode() if request else ""
        if service not in statuses:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return bytes([0x08, statuses[service]])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


async def test_grpc_health_probe(grpc_health_server: int) -> None:
    serving = await once({"grpc": {"port": grpc_health_server}})
    assert serving.result is probes.ProbeResult.SUCCESS
    sick = await once({"grpc": {"port": grpc_health_server, "service": "sick"}})
    assert sick == probes.ProbeOutcome(
        probes.ProbeResult.FAILURE, 'service unhealthy (responded with "NOT_SERVING")'
    )
    unknown = await once({"grpc": {"port": grpc_health_server, "service": "other"}})
    assert unknown.result is probes.ProbeResult.FAILURE
    down = await once({"grpc": {"port": free_port()}}, timeout=0.3)
    assert down.result is probes.ProbeResult.FAILURE
    assert down.message.startswith("timeout: failed to connect service")


# --- Lifecycle handlers -----------------------------------------------------------------


async def handle(handler: dict[str, Any], fake: FakeRuntime | None = None, timeout: float = 30):  # noqa: ASYNC109
    return await probes.run_handler(
        handler,
        runtime=cast(runtime.Runtime, fake or FakeRuntime(results())),
        container_id="cid",
        pod_ip="127.0.0.1",
        container={"name": "c"},
        timeout=timeout,
    )


async def test_exec_handler() -> None:
    fake = FakeRuntime(results(good=[0], bad=[3], slow=[runtime.DeadlineExceeded("late")]))
    assert await handle({"exec": {"command": ["probe", "good"]}}, fake) == probes.HandlerResult(
        True, "out good"
    )
    bad = await handle({"exec": {"command": ["probe", "bad"]}}, fake)
    assert bad == probes.HandlerResult(False, "command 'probe bad' exited with 3: out bad")
    slow = await handle({"exec": {"command": ["probe", "slow"]}}, fake)
    assert slow == probes.HandlerResult(False, 'command "probe slow" timed out')


async def test_http_handler_succeeds_on_any_answer(http_server: HttpServer) -> None:
    answered = await handle({"httpGet": {"path": "/fail", "port": http_server.port}})
    assert answered.success
    refused = await handle({"httpGet": {"path": "/", "port": free_port()}})
    assert not refused.success


async def test_sleep_handler_is_cut_short_by_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    assert await handle({"sleep": {"seconds": 5}}) == probes.HandlerResult(True)
    assert trio.current_time() - start == 5
    start = trio.current_time()
    assert (await handle({"sleep": {"seconds": 500}}, timeout=30)).success
    assert math.isclose(trio.current_time() - start, 30)


async def test_unsupported_handlers() -> None:
    tcp = await handle({"tcpSocket": {"port": 80}})
    assert tcp == probes.HandlerResult(False, "tcpSocket lifecycle handlers are not supported")
    assert not (await handle({})).success


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "pod")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


async def test_https_probe_skips_certificate_verification(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async def answer(stream: trio.SSLStream[trio.SocketStream]) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        await stream.send_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await stream.aclose()

    listeners = await nursery.start(
        functools.partial(
            trio.serve_ssl_over_tcp, answer, 0, _self_signed(tmp_path), host="127.0.0.1"
        )
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    outcome = await once({"httpGet": {"path": "/", "port": port, "scheme": "HTTPS"}})
    assert outcome == probes.ProbeOutcome(
        probes.ProbeResult.SUCCESS, "HTTP probe succeeded with statuscode: 204"
    )


async def test_an_adopted_container_has_served_part_of_its_initial_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeRuntime(results(ready=[0]))
    prober = probes.ContainerProber(
        pod={},
        container={"name": "c", "readinessProbe": exec_probe("ready", initialDelaySeconds=30)},
        container_id="cid",
        runtime=cast(runtime.Runtime, fake),
        pod_ip="127.0.0.1",
        on_change=lambda: None,
        running_for=25,
    )
    with trio.move_on_after(6):
        await prober.run()
    assert fake.times("ready") == [5]
    assert prober.ready
