"""API server benchmarks: GET and create throughput, a large list, watch fan-out, startup.

Figures, not tests: each one is printed beside its goal with PASS or MISS. The server is
`arktos up --plain-http` in a subprocess on a free loopback port, as users run it; the creates
are also measured against `arktos apiserver --plain-http`, the API server alone. Baselines on
the same hypercorn trio worker are measured in the same run: a bare "hello" app for GET, and
for creates two "floor" apps that decode and encode each pod, one of them also inserting it
into SQLite, and for watch fan-out a "watch floor" app that keeps the events in a list in
memory and wakes every watch on each create, run with the same client before arktos.
Load comes from wrk when it is installed and from a small Python client in this process
otherwise (the output says which). Client and server share the machine's CPUs, so every
rate is a lower bound of what the server alone could do. Everything the group starts it
stops (SIGTERM, then kill), and its temporary directory goes away; progress goes to stderr
so that stdout holds only the tables.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import math
import os
import pathlib
import resource
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any

import orjson
import trio
import yaml

from bench._report import (
    goal as _goal,
    leaves as _leaves,
    note as _note,
    percentile as _percentile,
    row as _row,
    title as _title,
)

CONNECTIONS = 32
WRK_THREADS = 2
READY_PREFIX = "arktos-lite is ready at "
HELLO_PREFIX = "hello is ready at "
FLOOR_PREFIX = "floor is ready at "
WATCH_FLOOR_PREFIX = "watch floor is ready at "
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
RECEIVE_SIZE = 256 * 1024
# The server allows 200 watches per user at once; the watchers are spread over users.
WATCHES_PER_USER = 100
WATCH_WRITE_CONNECTIONS = 16
WATCH_MARK = b'"name":"wcm-'
READYZ_POLL_SECONDS = 0.005
IDLE_SECONDS = 1.0
# After a create run on `arktos up`, wait (up to the timeout) until its scheduler has caught
# up, i.e. it uses less than QUIET_CPU of a CPU over QUIET_INTERVAL, so the next run is alone.
QUIET_CPU = 0.1
QUIET_INTERVAL = 0.25
QUIET_TIMEOUT = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """How much work each benchmark does: `FULL` by default, `QUICK` (~10x less) to smoke-test."""

    name: str
    repetitions: int
    load_seconds: int
    list_pods: int
    list_runs: int
    watchers: int
    watch_rate: float
    watch_seconds: float
    watch_drain_seconds: float
    starts: int


FULL = Scale(
    name="full",
    repetitions=5,
    load_seconds=5,
    list_pods=10_000,
    list_runs=5,
    watchers=500,
    watch_rate=500.0,
    watch_seconds=5.0,
    watch_drain_seconds=20.0,
    starts=5,
)

QUICK = dataclasses.replace(
    FULL,
    name="quick",
    repetitions=3,
    load_seconds=1,
    list_pods=1_000,
    list_runs=3,
    watchers=100,
    watch_seconds=1.0,
    watch_drain_seconds=5.0,
    starts=3,
)


SECTIONS = ("get", "creates", "list", "watch", "startup")


def main(*, quick: bool, only: frozenset[str] | None = None) -> None:
    """Run every section, or those named in `only` (see `SECTIONS`)."""
    scale = QUICK if quick else FULL
    began = time.perf_counter()
    wrk = shutil.which("wrk")
    unknown = sorted((only or frozenset()) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown api section(s): {', '.join(unknown)}; sections: {SECTIONS}")
    sections: list[tuple[str, Callable[[Scale, pathlib.Path, str | None], None]]] = [
        (title, function)
        for name, title, function in (
            ("get", "a. GET", _bench_get),
            ("creates", "b. creates", _bench_creates),
            ("list", "c. list", _bench_list),
            ("watch", "d. watch", _bench_watch),
            ("startup", "e. startup", _bench_startup),
        )
        if only is None or name in only
    ]
    failed = []
    with tempfile.TemporaryDirectory(prefix="arktos-bench-api-") as tmp:
        workdir = pathlib.Path(tmp)
        _print_header(scale, wrk)
        for name, section in sections:
            # One broken section must not hide the figures of the others.
            try:
                section(scale, workdir, wrk)
            except Exception as error:
                failed.append(name)
                traceback.print_exc()
                _title(f"{name}: FAILED")
                for leaf in _leaves(error):
                    _note(leaf)
                _note("(tracebacks on stderr)")
    _title("Process")
    _row("api group wall time", f"{time.perf_counter() - began:,.0f} s")
    if failed:
        raise SystemExit(f"api benchmarks failed: {', '.join(failed)}")


# Output


def _progress(text: str) -> None:
    print(f"[bench api] {text}", file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _runs(values: Sequence[float], unit: str = "") -> str:
    return "runs: " + ", ".join(f"{value:,.0f}{unit}" for value in values)


def _print_header(scale: Scale, wrk: str | None) -> None:
    print(f"arktos-lite API server benchmarks ({scale.name} run)", flush=True)
    _note(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"hypercorn {metadata.version('hypercorn')}, {os.cpu_count()} CPUs"
    )
    if wrk is not None:
        _note(f"load generator: {_wrk_version(wrk)} ({wrk}), -t{WRK_THREADS} -c{CONNECTIONS}")
    else:
        _note(
            "load generator: wrk NOT FOUND (apt-get install wrk), falling back to the Python "
            f"client in this process ({CONNECTIONS} keep-alive connections on trio); it needs "
            "more CPU than wrk, so rates are lower still"
        )
    _note(
        f"client and server share these {os.cpu_count()} CPUs (loopback, plain HTTP): "
        "every figure is a lower bound of the server alone"
    )
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        _note("PYTHONDONTWRITEBYTECODE is set: modules without a .pyc compile at every start")


def _wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    words = (result.stdout + result.stderr).split()
    return " ".join(words[:2]) if words else "wrk"


# Processes


@dataclasses.dataclass(frozen=True, slots=True)
class _Endpoint:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def _spawned(command: Sequence[str], log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process whose stdout is a pipe and stderr a log file; stopped on the way out."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a grace period, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _ready_line(process: subprocess.Popen[bytes], log: pathlib.Path, prefix: str) -> str:
    """The line a server prints once it listens, or an error with the tail of its log."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
    line = process.stdout.readline().decode() if readable else ""
    if not line.startswith(prefix):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"the server did not become ready: {line!r}; its log ends:\n{tail}")
    return line[len(prefix) :].strip()


def _arktos_command(
    data_dir: pathlib.Path, *extra: str, port: int = 0, command: str = "up"
) -> list[str]:
    """`arktos COMMAND` (`up` or `apiserver`, which take the same flags) on plain HTTP."""
    return [
        sys.executable,
        "-m",
        "arktos_lite",
        command,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--plain-http",
        *extra,
    ]


@contextlib.contextmanager
def _arktos(
    workdir: pathlib.Path, name: str, *extra: str, command: str = "up"
) -> Iterator[_Endpoint]:
    """`arktos COMMAND --plain-http` on a fresh data dir and a free loopback port."""
    log = workdir / f"{name}.log"
    with _spawned(_arktos_command(workdir / name, *extra, command=command), log) as process:
        url, kubeconfig = _ready_line(process, log, READY_PREFIX).split("; kubeconfig: ")
        config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
        yield _endpoint(process, url, config["users"][0]["user"]["token"])


# What every baseline server script ends with: the ASGI lifespan, then the script's `handle`
# served on a free loopback port of hypercorn's trio worker, as a raw ASGI callable; it
# prints "NAME is ready at URL". `read_body` is for the scripts' POSTs.
_SERVE = """
import functools
import hypercorn.config, hypercorn.trio, trio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await handle(scope, receive, send)

async def read_body(receive):
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)

async def serve(name):
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = 60
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(hypercorn.trio.serve, app, config))
        print(name + " is ready at " + bound[0], flush=True)
"""


def _script(handler: str, name: str) -> str:
    return handler + _SERVE + f"\ntrio.run(serve, {name!r})\n"


# The floor any ASGI app on hypercorn's trio worker stands on.
_HELLO_SERVER = _script(
    """
BODY = b'{"kind":"Status","apiVersion":"v1","status":"Success","message":"hello"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]

async def handle(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
""",
    "hello",
)


@contextlib.contextmanager
def _hello(workdir: pathlib.Path) -> Iterator[_Endpoint]:
    log = workdir / "hello.log"
    with _spawned([sys.executable, "-c", _HELLO_SERVER], log) as process:
        yield _endpoint(process, _ready_line(process, log, HELLO_PREFIX), "")


# What any create on this stack pays at least: section b's manifest read from `receive`,
# decoded, given what a create adds (uid, creationTimestamp, resourceVersion) and encoded.
# With `--sqlite FILE`, each create is also one INSERT, committed alone, in a worker thread.
_FLOOR_SERVER = _script(
    """
import datetime, sqlite3, sys, uuid
import orjson, trio

HEADERS = [(b"content-type", b"application/json")]
db = None
if sys.argv[1:2] == ["--sqlite"]:
    db = sqlite3.connect(sys.argv[2], isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE objects (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
revision = 0
limiter = trio.CapacityLimiter(1)

def insert(key, value):
    with db:
        return db.execute("INSERT INTO objects (key, value) VALUES (?, ?)", (key, value)).lastrowid

async def handle(scope, receive, send):
    global revision
    pod = orjson.loads(await read_body(receive))
    metadata = pod["metadata"]
    metadata["uid"] = str(uuid.uuid4())
    now = datetime.datetime.now(datetime.timezone.utc)
    metadata["creationTimestamp"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if db is None:
        revision += 1
    else:
        # As in etcd, the stored value holds no resourceVersion: the row id is it.
        key = scope["path"] + "/" + metadata["name"]
        revision = await trio.to_thread.run_sync(
            insert, key, orjson.dumps(pod), limiter=limiter
        )
    metadata["resourceVersion"] = str(revision)
    body = orjson.dumps(pod)
    headers = HEADERS + [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})
""",
    "floor",
)


@contextlib.contextmanager
def _floor(workdir: pathlib.Path, *, sqlite: pathlib.Path | None = None) -> Iterator[_Endpoint]:
    """`_FLOOR_SERVER`, with a SQLite insert per create when `sqlite` names a new file."""
    name = "floor" if sqlite is None else "floor-sqlite"
    log = workdir / f"{name}.log"
    extra = [] if sqlite is None else ["--sqlite", str(sqlite)]
    with _spawned([sys.executable, "-c", _FLOOR_SERVER, *extra], log) as process:
        yield _endpoint(process, _ready_line(process, log, FLOOR_PREFIX), "")


# What fan-out to many watches costs on this stack, with no API work: each create (any POST) is
# decoded, given the next resourceVersion, encoded and appended to a list of event lines, and
# wakes every watch at once; a watch (a GET with watch=1) sends all lines new to it as one
# chunk. Any other GET is an empty list at resourceVersion 1. Authorization is ignored.
_WATCH_FLOOR_SERVER = _script(
    """
import orjson, trio

JSON = (b"content-type", b"application/json")
EMPTY_LIST = b'{"metadata":{"resourceVersion":"1"},"items":[]}'
events = []
revision = 1
changed = trio.Event()

async def respond(send, status, body):
    headers = [JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

async def until_disconnect(receive, cancel_scope):
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel_scope.cancel()

async def stream(send):
    position = len(events)
    while True:
        if position == len(events):
            await changed.wait()
        chunk = b"".join(events[position:])
        position = len(events)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

async def handle(scope, receive, send):
    global revision, changed
    if scope["method"] == "POST":
        created = orjson.loads(await read_body(receive))
        revision += 1
        created.setdefault("metadata", {})["resourceVersion"] = str(revision)
        body = orjson.dumps(created)
        events.append(b'{"type":"ADDED","object":' + body + b"}\\n")
        changed.set()
        changed = trio.Event()
        await respond(send, 201, body)
    elif b"watch=1" in scope["query_string"].split(b"&"):
        await send({"type": "http.response.start", "status": 200, "headers": [JSON]})
        # Until the client goes away: then the stream is cancelled and the app returns.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(until_disconnect, receive, nursery.cancel_scope)
            await stream(send)
    else:
        await respond(send, 200, EMPTY_LIST)
""",
    "watch floor",
)


@contextlib.contextmanager
def _watch_floor(workdir: pathlib.Path) -> Iterator[_Endpoint]:
    """`_WATCH_FLOOR_SERVER`; its token is any, since it accepts every request."""
    log = workdir / "watch-floor.log"
    with _spawned([sys.executable, "-c", _WATCH_FLOOR_SERVER], log) as process:
        url = _ready_line(process, log, WATCH_FLOOR_PREFIX)
        yield _endpoint(process, url, secrets.token_urlsafe(32))


def _endpoint(process: subprocess.Popen[bytes], url: str, token: str) -> _Endpoint:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    if host != "127.0.0.1":
        raise RuntimeError(f"expected a loopback server, got {url}")
    return _Endpoint(process=process, host=host, port=int(port), token=token)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/PID/stat."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


# A minimal HTTP/1.1 client


class _Connection:
    """One keep-alive HTTP/1.1 connection: just enough client for these benchmarks.

    Requests go out pre-formatted; responses are framed by Content-Length or chunked
    encoding. Deliberately cheap, since it shares the CPUs with the server it measures.
    """

    def __init__(self, stream: trio.SocketStream, *, host: str, token: str) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._head = f"Host: {host}\r\n"
        if token:
            self._head += f"Authorization: Bearer {token}\r\n"

    @classmethod
    async def open(cls, endpoint: _Endpoint, *, token: str | None = None) -> _Connection:
        stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        host = f"{endpoint.host}:{endpoint.port}"
        return cls(stream, host=host, token=endpoint.token if token is None else token)

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stream.aclose()

    async def send(self, method: str, path: str, body: bytes = b"") -> None:
        head = f"{method} {path} HTTP/1.1\r\n{self._head}"
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        await self._stream.send_all(head.encode() + b"\r\n" + body)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        await self.send(method, path, body)
        status, headers = await self.read_head()
        return status, await self.read_body(headers)

    async def read_head(self) -> tuple[int, dict[bytes, bytes]]:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        lines = bytes(buffer[:end]).split(b"\r\n")
        del buffer[: end + 4]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split(b" ", 2)[1]), headers

    async def read_body(self, headers: dict[bytes, bytes]) -> bytes:
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while chunk := await self._read_chunk():
                parts.append(chunk)
            return b"".join(parts)
        length = int(headers.get(b"content-length", b"0"))
        while len(self._buffer) < length:
            await self._fill()
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    async def receive_raw(self) -> bytes:
        """The next bytes after a response head as they arrive (chunk framing included)."""
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        return await self._stream.receive_some(RECEIVE_SIZE)

    async def _read_chunk(self) -> bytes:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n")) < 0:
            await self._fill()
        size = int(bytes(buffer[:end]).split(b";")[0], 16)
        while len(buffer) < end + size + 4:
            await self._fill()
        chunk = bytes(buffer[end + 2 : end + 2 + size])
        del buffer[: end + size + 4]
        return chunk

    async def _fill(self) -> None:
        data = await self._stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data


async def _ensure_namespace(endpoint: _Endpoint, name: str) -> None:
    body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    async with await _Connection.open(endpoint) as connection:
        status, reply = await connection.request("POST", "/api/v1/namespaces", body)
    if status not in (201, 409):
        raise RuntimeError(f"creating namespace {name} answered {status}: {reply[:300]!r}")


# Load: wrk, or the Python client when wrk is missing


@dataclasses.dataclass(frozen=True, slots=True)
class _Load:
    """One load run: completed requests, failures, latency and the CPU each side used."""

    requests: int
    failed: int
    seconds: float
    p50: float
    p99: float
    server_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.failed) / self.seconds


# wrk reports through this line: requests, duration (us), errors, latency percentiles (us).
_WRK_REPORT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50.0)), string.format("BENCH99 %d\\n", latency:percentile(99.0)))
end
"""

# Each wrk thread POSTs `head .. name .. tail` with names unique per run and thread.
_WRK_CREATE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local next_id = 0
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  prefix = args[1] .. "-" .. id .. "-"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. prefix .. counter .. tail)
end
"""


def _wrk(
    wrk: str,
    endpoint: _Endpoint,
    path: str,
    *,
    seconds: int,
    script: pathlib.Path,
    args: Sequence[str] = (),
) -> _Load:
    command = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    if endpoint.token:
        command += ["-H", f"Authorization: Bearer {endpoint.token}"]
    command.append(endpoint.url + path)
    if args:
        command += ["--", *args]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = _cpu_seconds(endpoint.process.pid)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    server = _cpu_seconds(endpoint.process.pid) - server
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    report = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    if result.returncode != 0 or "BENCH" not in report:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    requests, duration, status_errors, socket_errors, p50 = map(int, report["BENCH"])
    elapsed = duration / 1e6
    return _Load(
        requests=requests,
        failed=status_errors + socket_errors,
        seconds=elapsed,
        p50=p50 / 1e6,
        p99=int(report["BENCH99"][0]) / 1e6,
        server_cpu=server / elapsed,
        client_cpu=client / elapsed,
    )


def _wrk_script(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text + _WRK_REPORT)
    return path


async def _python_load(
    endpoint: _Endpoint,
    path: str,
    *,
    seconds: float,
    body: Callable[[int, int], bytes] | None = None,
) -> _Load:
    """`CONNECTIONS` keep-alive clients in this process; POSTs `body(client, n)` if given."""
    latencies: list[float] = []
    failed = 0

    async def client(number: int, deadline: float) -> None:
        nonlocal failed
        async with await _Connection.open(endpoint) as connection:
            sent = 0
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                if body is None:
                    status, _ = await connection.request("GET", path)
                else:
                    status, _ = await connection.request("POST", path, body(number, sent))
                latencies.append(time.perf_counter() - start)
                sent += 1
                if status >= 400:
                    failed += 1

    server = _cpu_seconds(endpoint.process.pid)
    own = time.process_time()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for number in range(CONNECTIONS):
            nursery.start_soon(client, number, start + seconds)
    elapsed = time.perf_counter() - start
    return _Load(
        requests=len(latencies),
        failed=failed,
        seconds=elapsed,
        p50=_percentile(latencies, 0.5),
        p99=_percentile(latencies, 0.99),
        server_cpu=(_cpu_seconds(endpoint.process.pid) - server) / elapsed,
        client_cpu=(time.process_time() - own) / elapsed,
    )


def _load_detail(loads: Sequence[_Load]) -> str:
    """Latency and CPU of the median run; failures of all runs."""
    median = sorted(loads, key=lambda load: load.rate)[len(loads) // 2]
    failed = sum(load.failed for load in loads)
    return (
        f"{_runs([load.rate for load in loads])}; median run: latency p50 "
        f"{_ms(median.p50)}, p99 {_ms(median.p99)}, CPU server {median.server_cpu:.0%} "
        f"client {median.client_cpu:.0%}" + (f"; FAILED requests: {failed:,}" if failed else "")
    )


# Realistic objects


def _pod(name: str) -> dict[str, Any]:
    """A pod as a deployment would make it: labels, annotations, two containers, volumes."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app": "checkout",
                "tier": "frontend",
                "release": "stable",
                "team": "payments",
                "version": "v1.4.2",
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
                "example.com/owner": "payments-team@example.com",
                "example.com/build": "2024-05-01T12:00:00Z-3f9c2a1",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example.com/payments/checkout:1.4.2",
                    "args": ["--listen=:8080", "--metrics=:9102", "--config=/etc/checkout"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9102, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DB_HOST", "value": "postgres.payments.svc.cluster.local"},
                        {"name": "DB_PORT", "value": "5432"},
                        {"name": "FEATURES", "value": "checkout-v2,fast-refunds"},
                    ],
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/checkout", "readOnly": True},
                        {"name": "cache", "mountPath": "/var/cache/checkout"},
                    ],
                },
                {
                    "name": "log-shipper",
                    "image": "registry.example.com/platform/log-shipper:2.3.0",
                    "ports": [{"name": "health", "containerPort": 9000, "protocol": "TCP"}],
                    "env": [
                        {"name": "SHIP_TO", "value": "logs.platform.svc.cluster.local:24224"},
                        {"name": "BUFFER_SIZE", "value": "8Mi"},
                    ],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                    "volumeMounts": [
                        {"name": "cache", "mountPath": "/var/cache/checkout", "readOnly": True}
                    ],
                },
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout-config"}},
                {"name": "cache", "emptyDir": {}},
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
        },
    }


def _pod_template() -> tuple[bytes, bytes]:
    """The pod manifest as JSON around its name: `head + name + tail`."""
    marker = "@NAME@"
    head, tail = orjson.dumps(_pod(marker)).split(marker.encode())
    return head, tail


def _configmap(index: int) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"wcm-{index:06d}", "labels": {"bench": "watch"}},
            "data": {"index": str(index), "payload": "x" * 100},
        }
    )


# a. GET of one pod


def _bench_get(scale: Scale, workdir: pathlib.Path, wrk: str | None) -> None:
    path = "/api/v1/namespaces/default/pods/p"
    script = _wrk_script(workdir / "get.lua", "")
    hello: list[_Load] = []
    arktos: list[_Load] = []
    with _hello(workdir) as baseline, _arktos(workdir, "get") as server:
        head, tail = _pod_template()
        trio.run(_create_one, server, "/api/v1/namespaces/default/pods", head + b"p" + tail)

        def load(endpoint: _Endpoint, target: str, seconds: int) -> _Load:
            if wrk is not None:
                return _wrk(wrk, endpoint, target, seconds=seconds, script=script)
            return trio.run(lambda: _python_load(endpoint, target, seconds=seconds))

        _progress("get: warming up")
        load(baseline, "/", 1)
        load(server, path, 1)
        # Interleaved so that a noisy neighbour hurts both alike.
        for repetition in range(scale.repetitions):
            _progress(f"get: repetition {repetition + 1}/{scale.repetitions}")
            hello.append(load(baseline, "/", scale.load_seconds))
            arktos.append(load(server, path, scale.load_seconds))

    _title(f"a. GET throughput, {CONNECTIONS} keep-alive connections")
    _note(
        f"{'wrk' if wrk else 'Python client'}, {scale.load_seconds} s per run, median of "
        f"{scale.repetitions} runs, baseline and API server alternating; CPU = share of one "
        "CPU used during the run"
    )
    base = statistics.median(load.rate for load in hello)
    rate = statistics.median(load.rate for load in arktos)
    _row("hypercorn hello (raw ASGI callable, trio worker)", f"{base:,.0f}/s", "", "")
    _note(f"    {_load_detail(hello)}")
    _row(f"arktos-lite GET {path}", f"{rate:,.0f}/s")
    _note(f"    {_load_detail(arktos)}")
    ratio = rate / base
    _row("arktos-lite / hypercorn hello", f"{ratio:.0%}", _goal(ratio >= 0.5, ">= 50 %"))


async def _create_one(endpoint: _Endpoint, path: str, body: bytes) -> None:
    async with await _Connection.open(endpoint) as connection:
        status, reply = await connection.request("POST", path, body)
    if status != 201:
        raise RuntimeError(f"POST {path} answered {status}: {reply[:300]!r}")


# b. Creates of realistic pods


def _bench_creates(scale: Scale, workdir: pathlib.Path, wrk: str | None) -> None:
    namespace = "bench-create"
    path = f"/api/v1/namespaces/{namespace}/pods"
    head, tail = _pod_template()
    script = _wrk_script(
        workdir / "create.lua", _WRK_CREATE.format(head=head.decode(), tail=tail.decode())
    )
    floor, floor_sqlite, apiserver, up = "floor", "floor-sqlite", "apiserver", "up"
    loads: dict[str, list[_Load]] = {floor: [], floor_sqlite: [], apiserver: [], up: []}
    quiet: list[float] = []
    with contextlib.ExitStack() as stack:
        servers = {
            floor: stack.enter_context(_floor(workdir)),
            floor_sqlite: stack.enter_context(_floor(workdir, sqlite=workdir / "floor.sqlite")),
            apiserver: stack.enter_context(
                _arktos(workdir, "create-apiserver", command="apiserver")
            ),
            up: stack.enter_context(_arktos(workdir, "create-up")),
        }
        for name in (apiserver, up):
            trio.run(_ensure_namespace, servers[name], namespace)

        def load(name: str, tag: str, seconds: int) -> _Load:
            server = servers[name]
            if wrk is not None:
                result = _wrk(wrk, server, path, seconds=seconds, script=script, args=[tag])
            else:

                def body(client: int, sent: int) -> bytes:
                    return head + f"{tag}-{client}-{sent}".encode() + tail

                result = trio.run(lambda: _python_load(server, path, seconds=seconds, body=body))
            if name == up:
                # Its scheduler works off the new pods after the run: not in the next one.
                quiet.append(_settle(server))
            return result

        _progress("creates: warming up")
        for name in servers:
            load(name, "warm", 1)
        # Interleaved so that a noisy neighbour hurts all alike.
        for repetition in range(scale.repetitions):
            _progress(f"creates: repetition {repetition + 1}/{scale.repetitions}")
            for name in servers:
                loads[name].append(load(name, f"r{repetition}", scale.load_seconds))
        created = {name: trio.run(_count, servers[name], path) for name in (apiserver, up)}

    _title(f"b. Creates of realistic pods, {CONNECTIONS} keep-alive connections")
    _note(
        f"pod manifest of {len(head) + len(tail) + 12:,} bytes (5 labels, 4 annotations, "
        "2 containers with env, ports, resources, volume mounts; 2 volumes), a unique name each"
    )
    _note(
        f"{'wrk + Lua' if wrk else 'Python client'}, {scale.load_seconds} s per run, median of "
        f"{scale.repetitions} runs, the four servers alternating, each into one namespace of "
        f"its own store ({created[apiserver]:,} and {created[up]:,} pods in the arktos ones "
        "at the end)"
    )
    _note(
        "floors: a raw ASGI callable on the same hypercorn trio worker reads the body, "
        "decodes it, sets uid, creationTimestamp and resourceVersion and encodes it; the "
        "second also INSERTs it into a SQLite table (WAL, synchronous=NORMAL, one transaction "
        "per create, in one worker thread)"
    )
    _note(
        "the floors do no authentication, validation, defaulting, managed fields, watch "
        "fan-out or group commit; arktos does all of these and commits with synchronous=FULL"
    )
    _note(
        "`arktos up` runs the scheduler, controllers and node agent too: each pod created is "
        "unschedulable (the node fits a few), so the scheduler writes a PodScheduled=False "
        "status and a FailedScheduling event for it, about two more writes per create"
    )
    if quiet:
        _note(
            f"after each run the bench waited for `arktos up` to go quiet (< {QUIET_CPU:.0%} "
            f"of a CPU): median {statistics.median(quiet):,.1f} s, max {max(quiet):,.1f} s"
            + (f" (timeout {QUIET_TIMEOUT:g} s)" if max(quiet) >= QUIET_TIMEOUT else "")
        )
    rates = {name: statistics.median(load.rate for load in runs) for name, runs in loads.items()}
    _row("floor: decode + encode (raw ASGI, trio worker)", f"{rates[floor]:,.0f}/s")
    _note(f"    {_load_detail(loads[floor])}")
    _row("floor: decode + encode + one SQLite insert", f"{rates[floor_sqlite]:,.0f}/s")
    _note(f"    {_load_detail(loads[floor_sqlite])}")
    for name, label in ((apiserver, "arktos apiserver"), (up, "arktos up")):
        rate = rates[name]
        _row(
            f"{label} creates/s (201 Created)", f"{rate:,.0f}/s", _goal(rate >= 1_500, ">= 1,500/s")
        )
        _note(f"    {_load_detail(loads[name])}")
    _row("arktos apiserver / floor with SQLite", f"{rates[apiserver] / rates[floor_sqlite]:.0%}")


def _settle(endpoint: _Endpoint) -> float:
    """Seconds until `endpoint` uses less than `QUIET_CPU` (at most `QUIET_TIMEOUT`)."""
    began = time.perf_counter()
    while time.perf_counter() - began < QUIET_TIMEOUT:
        used = _cpu_seconds(endpoint.process.pid)
        time.sleep(QUIET_INTERVAL)
        if _cpu_seconds(endpoint.process.pid) - used < QUIET_CPU * QUIET_INTERVAL:
            break
    return time.perf_counter() - began


async def _count(endpoint: _Endpoint, path: str) -> int:
    async with await _Connection.open(endpoint) as connection:
        status, body = await connection.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    return len(orjson.loads(body)["items"])


# c. List of many pods


@dataclasses.dataclass(frozen=True, slots=True)
class _Listed:
    load_seconds: float
    total: list[float]
    first_byte: list[float]
    items: int
    size: int


def _bench_list(scale: Scale, workdir: pathlib.Path, wrk: str | None) -> None:
    with _arktos(workdir, "list") as server:
        listed = trio.run(_list_run, server, scale)
    count = scale.list_pods
    total = statistics.median(listed.total)

    _title(f"c. List of {count:,} pods (JSON)")
    _note(
        f"{count:,} pods of section b's manifest in one namespace, created in "
        f"{listed.load_seconds:,.0f} s ({count / listed.load_seconds:,.0f}/s, Python client, "
        f"{CONNECTIONS} connections); then one warm-up list and {scale.list_runs} timed ones"
    )
    _note("time = request sent -> whole body received, one keep-alive connection")
    _row(
        f"list {count:,} pods, median of {scale.list_runs}",
        _ms(total),
        _goal(total < 0.3, "< 300 ms"),
        _runs([seconds * 1000 for seconds in listed.total], " ms"),
    )
    _row(
        "  of which until the first byte of the response",
        _ms(statistics.median(listed.first_byte)),
        detail=f"{listed.items:,} items, {listed.size / 2**20:,.1f} MB",
    )


async def _list_run(server: _Endpoint, scale: Scale) -> _Listed:
    namespace = "bench-list"
    path = f"/api/v1/namespaces/{namespace}/pods"
    await _ensure_namespace(server, namespace)
    head, tail = _pod_template()
    next_index = 0
    failures: list[str] = []

    async def creator() -> None:
        nonlocal next_index
        async with await _Connection.open(server) as connection:
            while next_index < scale.list_pods:
                index = next_index
                next_index += 1
                status, reply = await connection.request(
                    "POST", path, head + f"pod-{index:06d}".encode() + tail
                )
                if status != 201:
                    failures.append(f"{status}: {reply[:200]!r}")
                if index % 2_000 == 1_999:
                    _progress(f"list: created {index + 1:,}/{scale.list_pods:,} pods")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(CONNECTIONS):
            nursery.start_soon(creator)
    load_seconds = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} creates failed, e.g. {failures[0]}")

    _progress(f"list: {scale.list_runs} lists of {scale.list_pods:,} pods")
    total: list[float] = []
    first_byte: list[float] = []
    body = b""
    async with await _Connection.open(server) as connection:
        for run in range(scale.list_runs + 1):
            start = time.perf_counter()
            await connection.send("GET", path)
            status, headers = await connection.read_head()
            headed = time.perf_counter()
            body = await connection.read_body(headers)
            done = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
            if run > 0:  # the first one warms caches
                total.append(done - start)
                first_byte.append(headed - start)
    items = len(orjson.loads(body)["items"])
    if items != scale.list_pods:
        raise RuntimeError(f"listed {items} pods, created {scale.list_pods}")
    return _Listed(load_seconds, total, first_byte, items, len(body))


# d. Watch fan-out


@dataclasses.dataclass(frozen=True, slots=True)
class _Watched:
    writes: int
    acked: int
    write_failures: int
    write_seconds: float
    commit: list[float]
    latencies: array.array[float]
    # Lower bounds for events not delivered by the deadline: deadline - send time.
    undelivered: array.array[float]
    finished: int
    setup_seconds: float
    server_cpu: float
    client_cpu: float


def _bench_watch(scale: Scale, workdir: pathlib.Path, wrk: str | None) -> None:
    _allow_files(scale.watchers + 1_000)
    users = math.ceil(scale.watchers / WATCHES_PER_USER)
    tokens = [secrets.token_urlsafe(24) for _ in range(users)]
    token_file = workdir / "watch-tokens.csv"
    token_file.write_text(
        "".join(f"{token},bench-watcher-{n},bench-watcher-{n}\n" for n, token in enumerate(tokens))
    )
    with _watch_floor(workdir) as floor:
        _progress("watch: the floor first")
        floored = trio.run(_watch_run, floor, tokens, scale)
    with _arktos(workdir, "watch", "--token-auth-file", str(token_file)) as server:
        watched = trio.run(_watch_run, server, tokens, scale)
        time.sleep(0.5)
        exited = server.process.poll()

    _title(f"d. Watch delivery latency, {scale.watchers} watchers")
    _note(
        f"{scale.watchers} watches (?watch=1&resourceVersion=N) of the config maps of one "
        f"namespace, {WATCHES_PER_USER} per user over {users} token-file user(s) (the server "
        f"allows 200 watches per user); opened in {watched.setup_seconds:,.1f} s"
    )
    _note(
        f"{watched.writes:,} creates paced at {scale.watch_rate:,.0f}/s over "
        f"{WATCH_WRITE_CONNECTIONS} keep-alive connections: {watched.acked:,} acknowledged, "
        f"at {watched.acked / watched.write_seconds:,.0f}/s"
        + (f"; {watched.write_failures} FAILED" if watched.write_failures else "")
    )
    _note(
        "latency = the watcher received the event - the create request was sent; the "
        "watchers are raw sockets in this process that scan each chunk for the names only"
    )
    _note(
        "floor: a raw ASGI callable on the same hypercorn trio worker, measured first with the "
        "same client, tokens and rate: each create is decoded, given a resourceVersion, "
        "encoded and appended to a list in memory, and wakes every watch at once, which sends "
        "all its new event lines as one chunk; it does no authentication, storage, validation "
        "or watch cache. It wakes the watches on every create, arktos once per committed batch "
        "of creates, so under load arktos' watches may send fewer, larger chunks than the floor's"
    )
    _note(
        f"floor run: {floored.acked:,} of {floored.writes:,} creates acknowledged, at "
        f"{floored.acked / floored.write_seconds:,.0f}/s"
        + (f"; {floored.write_failures} FAILED" if floored.write_failures else "")
        + f"; watches opened in {floored.setup_seconds:,.1f} s; the floor used "
        f"{floored.server_cpu:.0%} and this client {floored.client_cpu:.0%} of one CPU"
    )
    _watch_rows(floored, scale, prefix="floor: ", goal=False)
    _note(
        "client and server share the CPUs: during the run the server used "
        f"{watched.server_cpu:.0%} and this client {watched.client_cpu:.0%} of one CPU"
    )
    _watch_rows(watched, scale, prefix="", goal=True)
    if exited is not None:
        _note(
            f"THE SERVER EXITED ({exited}) after the watchers disconnected; its log ends with: "
            + _last_line(workdir / "watch.log")
        )


def _watch_rows(watched: _Watched, scale: Scale, *, prefix: str, goal: bool) -> None:
    """The latency rows of one `_watch_run`, labels led by `prefix`; with the goal when `goal`."""
    latencies = watched.latencies
    everything = latencies + watched.undelivered
    incomplete = bool(watched.undelivered)
    bound = " (lower bound)" if incomplete else ""
    if everything:
        p99 = _percentile(everything, 0.99)
        _row(f"{prefix}delivery latency, p50{bound}", _ms(_percentile(everything, 0.5)))
        _row(
            f"{prefix}delivery latency, p99{bound}",
            _ms(p99),
            _goal(p99 < 0.05 and not incomplete, "p99 < 50 ms") if goal else "",
        )
        _row(f"{prefix}delivery latency, max{bound}", _ms(max(everything)))
    if watched.commit:
        p50, p99 = (_percentile(watched.commit, q) for q in (0.5, 0.99))
        _row(
            f"{prefix}create request latency (sent -> 201), p50 / p99",
            f"{_ms(p50)} / {_ms(p99)}",
        )
    _row(
        f"{prefix}events delivered",
        f"{len(latencies):,}",
        detail=f"of {len(everything):,}; {watched.finished}/{scale.watchers} watchers got all",
    )
    if incomplete:
        deadline = scale.watch_seconds + scale.watch_drain_seconds
        _note(
            f"{prefix}INCOMPLETE: {len(watched.undelivered):,} events not delivered "
            f"{deadline:g} s after the first write; they count as (deadline - send time), so "
            "the percentiles above are lower bounds"
        )


def _last_line(log: pathlib.Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(empty log)"


def _allow_files(count: int) -> None:
    """Raise the soft open-files limit (inherited by the server) to `count` if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def _watch_run(server: _Endpoint, tokens: list[str], scale: Scale) -> _Watched:
    namespace = "bench-watch"
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await _ensure_namespace(server, namespace)
    async with await _Connection.open(server) as connection:
        status, body = await connection.request("GET", path + "?limit=1")
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    revision = orjson.loads(body)["metadata"]["resourceVersion"]
    total = round(scale.watch_rate * scale.watch_seconds)
    sent_at = array.array("d", [math.nan]) * total
    acked: set[int] = set()
    latencies = array.array("d")
    seen = [bytearray(total) for _ in range(scale.watchers)]
    finished = 0
    all_finished = trio.Event()

    async def watcher(number: int, *, task_status: trio.TaskStatus[None]) -> None:
        nonlocal finished
        token = tokens[number % len(tokens)]
        mine = seen[number]
        async with await _Connection.open(server, token=token) as connection:
            await connection.send("GET", f"{path}?watch=1&resourceVersion={revision}")
            status, _ = await connection.read_head()
            if status != 200:
                raise RuntimeError(f"watch {number} answered {status}")
            task_status.started()
            received = 0
            tail = b""
            while received < total:
                data = await connection.receive_raw()
                now = time.perf_counter()
                if not data:
                    return
                data = tail + data
                end = data.rfind(b"\n")
                # Only complete lines are scanned; each holds one event and one such name.
                position = data.find(WATCH_MARK, 0, end)
                while position >= 0:
                    start = position + len(WATCH_MARK)
                    index = int(data[start : start + 6])
                    latencies.append(now - sent_at[index])
                    mine[index] = 1
                    received += 1
                    position = data.find(WATCH_MARK, start, end)
                tail = data[end + 1 :]
        finished += 1
        if finished == scale.watchers:
            all_finished.set()

    commit: list[float] = []
    write_failures = 0
    last_ack = 0.0
    pool_send, pool_receive = trio.open_memory_channel[_Connection](WATCH_WRITE_CONNECTIONS)

    async def write(index: int) -> None:
        nonlocal write_failures, last_ack
        connection = await pool_receive.receive()
        body = _configmap(index)
        sent_at[index] = start = time.perf_counter()
        status, _ = await connection.request("POST", path, body)
        last_ack = time.perf_counter()
        commit.append(last_ack - start)
        pool_send.send_nowait(connection)
        if status == 201:
            acked.add(index)
        else:
            write_failures += 1

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(WATCH_WRITE_CONNECTIONS):
            connection = await stack.enter_async_context(await _Connection.open(server))
            pool_send.send_nowait(connection)
        async with trio.open_nursery() as watchers:
            _progress(f"watch: opening {scale.watchers} watches")
            start = time.perf_counter()
            for number in range(scale.watchers):
                await watchers.start(watcher, number)
            setup_seconds = time.perf_counter() - start
            _progress(f"watch: {total:,} creates at {scale.watch_rate:,.0f}/s")
            server_cpu = _cpu_seconds(server.process.pid)
            own = time.process_time()
            first = time.perf_counter()
            # A server that falls far behind is measured up to this deadline, not waited for.
            with trio.move_on_after(scale.watch_seconds + scale.watch_drain_seconds):
                async with trio.open_nursery() as writers:
                    began = trio.current_time()
                    for index in range(total):
                        await trio.sleep_until(began + index / scale.watch_rate)
                        writers.start_soon(write, index)
                await all_finished.wait()
            end = time.perf_counter()
            server_cpu = (_cpu_seconds(server.process.pid) - server_cpu) / (end - first)
            client_cpu = (time.process_time() - own) / (end - first)
            watchers.cancel_scope.cancel()
    undelivered = array.array(
        "d", (end - sent_at[index] for mine in seen for index in acked if not mine[index])
    )
    return _Watched(
        writes=total,
        acked=len(acked),
        write_failures=write_failures,
        write_seconds=max(last_ack - first, 1e-9),
        commit=commit,
        latencies=latencies,
        undelivered=undelivered,
        finished=finished,
        setup_seconds=setup_seconds,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
    )


# e. Startup and idle memory


@dataclasses.dataclass(frozen=True, slots=True)
class _Start:
    readyz: float
    rss_kb: int
    peak_kb: int
    stop_seconds: float


def _bench_startup(scale: Scale, workdir: pathlib.Path, wrk: str | None) -> None:
    starts: list[_Start] = []
    imports: list[float] = []
    for number in range(scale.starts):
        _progress(f"startup: start {number + 1}/{scale.starts}")
        starts.append(_start_once(workdir, number))
        began = time.perf_counter()
        # os._exit: the interpreter's teardown is not part of a server's startup.
        subprocess.run([sys.executable, "-c", _IMPORTS], check=True)
        imports.append(time.perf_counter() - began)

    _title("e. Startup and idle memory")
    _note(
        f"`arktos up --plain-http --port P` on an empty data dir, {scale.starts} fresh starts; "
        f"/readyz polled every {READYZ_POLL_SECONDS * 1000:g} ms from the spawn on (P is a "
        "free port the bench picks: with port 0 the port is known only once ready)"
    )
    readyz = statistics.median(start.readyz for start in starts)
    _row(
        "spawn -> /readyz 200, median",
        f"{readyz:,.2f} s",
        _goal(readyz < 1.5, "< 1.5 s"),
        "runs: " + ", ".join(f"{start.readyz:,.2f} s" for start in starts),
    )
    _row(
        "  of which interpreter start + imports of arktos_lite.cli",
        f"{statistics.median(imports):,.2f} s",
    )
    rss = statistics.median(start.rss_kb for start in starts) / 1024
    _row(
        f"server RSS at idle, {IDLE_SECONDS:g} s after ready (VmRSS), median",
        f"{rss:,.0f} MB",
        _goal(rss < 120, "< 120 MB"),
        f"peak (VmHWM) {statistics.median(start.peak_kb for start in starts) / 1024:,.0f} MB",
    )
    _row(
        "SIGTERM -> exit, median",
        f"{statistics.median(start.stop_seconds for start in starts):,.2f} s",
    )


_IMPORTS = "import os, arktos_lite.cli; os._exit(0)"


def _start_once(workdir: pathlib.Path, number: int) -> _Start:
    port = _free_port()
    log = workdir / f"start-{number}.log"
    began = time.perf_counter()
    with _spawned(_arktos_command(workdir / f"start-{number}", port=port), log) as process:
        readyz = _poll_readyz(port, process, deadline=began + READY_TIMEOUT) - began
        _ready_line(process, log, READY_PREFIX)
        time.sleep(IDLE_SECONDS)
        rss = _status_kb(process.pid, "VmRSS")
        peak = _status_kb(process.pid, "VmHWM")
        stopping = time.perf_counter()
        _stop(process)
        stop_seconds = time.perf_counter() - stopping
    return _Start(readyz=readyz, rss_kb=rss, peak_kb=peak, stop_seconds=stop_seconds)


def _free_port() -> int:
    """A loopback port free right now (another process could take it before the server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _poll_readyz(port: int, process: subprocess.Popen[bytes], *, deadline: float) -> float:
    """When /readyz on 127.0.0.1:`port` first answered 200 (a `time.perf_counter()` value)."""
    request = b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before ready")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"/readyz did not answer 200 within {READY_TIMEOUT:g} s")
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.settimeout(READY_TIMEOUT)
            probe.connect(("127.0.0.1", port))
            probe.sendall(request)
            if probe.recv(64).startswith(b"HTTP/1.1 200"):
                return time.perf_counter()
        time.sleep(READYZ_POLL_SECONDS)
