"""Container probes and lifecycle hooks, with kubelet's prober semantics.

A `ContainerProber` runs a running container's startup, liveness and readiness probes
(exec through the runtime, httpGet, tcpSocket, grpc) on trio time and keeps three facts
the pod worker reads: `started` (the startup probe passed, or there is none), `ready`
(started, live, and the readiness probe passed, or there is none) and `live` (False once
the liveness or the startup probe failed `failureThreshold` times in a row, after which
the worker restarts the container and makes a new prober). As in kubelet: the startup
probe gates the other two; readiness starts False when there is a readiness probe;
results only count after `failureThreshold` failures or `successThreshold` successes in
a row (1 for liveness and startup); a probe that could not run at all (the runtime is
unreachable, a named port does not exist) counts for nothing. `on_change` is called each
time one of the three changes.

`run_handler` runs a `postStart`/`preStop` handler (exec, httpGet or sleep) once.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
import httpx
import trio

from arktos_lite import runtime
from arktos_lite.runtime import errors as runtime_errors

__all__ = [
    "ContainerProber",
    "HandlerResult",
    "ProbeKind",
    "ProbeOutcome",
    "ProbeResult",
    "probe_once",
    "run_handler",
]

logger = logging.getLogger(__name__)

_USER_AGENT = "kube-probe/1.32"
_MAX_REDIRECTS = 10
# The runtime enforces an exec's timeout; this margin only catches one that does not.
_EXEC_GRACE = 2.0
_GRPC_STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


class ProbeKind(enum.StrEnum):
    STARTUP = "startup"
    LIVENESS = "liveness"
    READINESS = "readiness"


class ProbeResult(enum.StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    # The probe could not be run at all: kubelet throws such a result away.
    UNKNOWN = "Unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeOutcome:
    result: ProbeResult
    message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerResult:
    """A lifecycle hook's outcome; `message` says what went wrong (or what it printed)."""

    success: bool
    message: str = ""


class _ProbeError(Exception):
    """The probe is misconfigured for this container (an unknown named port, ...)."""


class ContainerProber:
    """The probes of one running container, and what they concluded so far."""

    def __init__(
        self,
        *,
        pod: Mapping[str, Any],
        container: Mapping[str, Any],
        container_id: str,
        runtime: runtime.Runtime,
        pod_ip: str,
        on_change: Callable[[], None],
        running_for: float = 0.0,
    ) -> None:
        """`running_for`: how long the container has run already (a container adopted after
        an agent restart), which counts towards the probes' initialDelaySeconds."""
        self._running_for = max(0.0, running_for)
        self._pod = pod
        self._container = container
        self._container_id = container_id
        self._runtime = runtime
        self._pod_ip = pod_ip
        self._on_change = on_change
        self._probes: dict[ProbeKind, Mapping[str, Any]] = {
            kind: probe
            for kind in ProbeKind
            if isinstance(probe := container.get(f"{kind}Probe"), Mapping)
        }
        self._started = ProbeKind.STARTUP not in self._probes
        self._readiness_passed = ProbeKind.READINESS not in self._probes
        self._live = True
        self._ready = self._started and self._readiness_passed
        self._failure = ""
        self._started_event: trio.Event | None = None

    @property
    def started(self) -> bool:
        """The startup probe passed (True from the start without one)."""
        return self._started

    @property
    def ready(self) -> bool:
        """Started, live, and the readiness probe passed (or there is none)."""
        return self._ready

    @property
    def live(self) -> bool:
        """False once the liveness or startup probe failed failureThreshold times."""
        return self._live

    @property
    def failure(self) -> str:
        """The last failure that counted, as kubelet's event says it (`Liveness probe
        failed: ...`), or "" when none did."""
        return self._failure

    async def run(self) -> None:
        """Probe until cancelled (the pod worker cancels it when the container stops)."""
        started_at = trio.current_time() - self._running_for
        self._started_event = trio.Event()
        if self._started:
            self._started_event.set()
        async with trio.open_nursery() as nursery:
            for kind, probe in self._probes.items():
                nursery.start_soon(self._probe_loop, kind, probe, started_at)
        await trio.sleep_forever()

    async def _probe_loop(
        self, kind: ProbeKind, probe: Mapping[str, Any], started_at: float
    ) -> None:
        period = max(1, _int(probe.get("periodSeconds"), 10))
        timeout = max(1, _int(probe.get("timeoutSeconds"), 1))
        failure_threshold = max(1, _int(probe.get("failureThreshold"), 3))
        success_threshold = (
            max(1, _int(probe.get("successThreshold"), 1)) if kind is ProbeKind.READINESS else 1
        )
        initial_delay = max(0, _int(probe.get("initialDelaySeconds"), 0))
        if kind is not ProbeKind.STARTUP:
            assert self._started_event is not None
            await self._started_event.wait()
        # initialDelaySeconds counts from the container's start, like kubelet's.
        next_at = max(trio.current_time(), started_at + initial_delay)
        last: ProbeResult | None = None
        run_length = 0
        while True:
            await trio.sleep_until(next_at)
            next_at = max(next_at + period, trio.current_time())
            outcome = await probe_once(
                probe,
                runtime=self._runtime,
                container_id=self._container_id,
                pod_ip=self._pod_ip,
                container=self._container,
                timeout=float(timeout),
            )
            if outcome.result is ProbeResult.UNKNOWN:
                logger.debug("%s probe of %s errored: %s", kind, self._describe(), outcome.message)
                continue
            run_length = run_length + 1 if outcome.result is last else 1
            last = outcome.result
            if outcome.result is ProbeResult.FAILURE:
                logger.debug("%s probe of %s failed: %s", kind, self._describe(), outcome.message)
                if run_length < failure_threshold:
                    continue
                self._failure = f"{kind.capitalize()} probe failed: {outcome.message}"
            elif run_length < success_threshold:
                continue
            self._record(kind, success=outcome.result is ProbeResult.SUCCESS)
            if kind is ProbeKind.STARTUP and outcome.result is ProbeResult.SUCCESS:
                return
            if kind is not ProbeKind.READINESS and outcome.result is ProbeResult.FAILURE:
                # The container will be restarted: stop probing it, as kubelet holds off.
                return

    def _record(self, kind: ProbeKind, *, success: bool) -> None:
        before = (self._started, self._ready, self._live)
        match kind:
            case ProbeKind.STARTUP:
                if success:
                    self._started = True
                    assert self._started_event is not None
                    self._started_event.set()
                else:
                    self._live = False
            case ProbeKind.LIVENESS:
                if not success:
                    self._live = False
            case ProbeKind.READINESS:
                self._readiness_passed = success
        self._ready = self._started and self._live and self._readiness_passed
        if (self._started, self._ready, self._live) != before:
            logger.debug(
                "%s: started=%s ready=%s live=%s",
                self._describe(),
                self._started,
                self._ready,
                self._live,
            )
            self._on_change()

    def _describe(self) -> str:
        metadata = self._pod.get("metadata") or {}
        return (
            f"{metadata.get('tenant', '')}/{metadata.get('namespace', '')}/"
            f"{metadata.get('name', '')}/{self._container.get('name', '')}"
        )


def _int(value: Any, default: int) -> int:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# --- One probe --------------------------------------------------------------------------


async def probe_once(
    probe: Mapping[str, Any],
    *,
    runtime: runtime.Runtime,
    container_id: str,
    pod_ip: str,
    container: Mapping[str, Any],
    timeout: float,  # noqa: ASYNC109
) -> ProbeOutcome:
    """Run one probe (exec, httpGet, tcpSocket or grpc) once, within `timeout` seconds."""
    try:
        if (action := probe.get("exec")) is not None:
            return await _exec(
                runtime, container_id, list(action.get("command") or ()), within=timeout
            )
        if (action := probe.get("httpGet")) is not None:
            return await _http_get(action, pod_ip=pod_ip, container=container, within=timeout)
        if (action := probe.get("tcpSocket")) is not None:
            host = str(action.get("host") or pod_ip)
            port = _port(action.get("port"), container)
            return await _tcp(host, port, within=timeout)
        if (action := probe.get("grpc")) is not None:
            port = _port(action.get("port"), container)
            service = str(action.get("service") or "")
            return await _grpc(pod_ip, port, service, within=timeout)
    except _ProbeError as e:
        return ProbeOutcome(ProbeResult.UNKNOWN, str(e))
    return ProbeOutcome(ProbeResult.UNKNOWN, "missing probe handler")


async def _exec(
    runtime_: runtime.Runtime, container_id: str, command: Sequence[str], *, within: float
) -> ProbeOutcome:
    text = " ".join(command)
    with trio.move_on_after(within + _EXEC_GRACE):
        try:
            result = await runtime_.exec_sync(container_id, command, timeout=within)
        except runtime_errors.DeadlineExceeded:
            return ProbeOutcome(ProbeResult.FAILURE, f'command "{text}" timed out')
        except runtime_errors.CRIError as e:
            return ProbeOutcome(ProbeResult.UNKNOWN, f"exec {text!r}: {e.message}")
        output = (result.stdout + result.stderr).decode(errors="replace")
        if result.exit_code == 0:
            return ProbeOutcome(ProbeResult.SUCCESS, output)
        return ProbeOutcome(
            ProbeResult.FAILURE,
            output or f'command "{text}" exited with code {result.exit_code}',
        )
    return ProbeOutcome(ProbeResult.FAILURE, f'command "{text}" timed out')


def _port(value: Any, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value.isdigit():
        port = int(value)
    elif isinstance(value, str) and value:
        for entry in container.get("ports") or ():
            if entry.get("name") == value:
                port = _int(entry.get("containerPort"), 0)
                break
        else:
            raise _ProbeError(
                f"couldn't find port: {value} in container {container.get('name', '')!r}"
            )
    else:
        raise _ProbeError(f"invalid port: {value!r}")
    if not 0 < port < 65536:
        raise _ProbeError(f"invalid port number: {port}")
    return port


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _http_get(
    action: Mapping[str, Any], *, pod_ip: str, container: Mapping[str, Any], within: float
) -> ProbeOutcome:
    response_or_outcome = await _http_request(
        action, pod_ip=pod_ip, container=container, within=within
    )
    if isinstance(response_or_outcome, ProbeOutcome):
        return response_or_outcome
    status = response_or_outcome
    if 200 <= status < 400:
        return ProbeOutcome(ProbeResult.SUCCESS, f"HTTP probe succeeded with statuscode: {status}")
    return ProbeOutcome(ProbeResult.FAILURE, f"HTTP probe failed with statuscode: {status}")


async def _http_request(
    action: Mapping[str, Any], *, pod_ip: str, container: Mapping[str, Any], within: float
) -> int | ProbeOutcome:
    """GET the action's URL as kubelet does; its status code, or the failure."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or pod_ip)
    port = _port(action.get("port"), container)
    path = str(action.get("path") or "")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": _USER_AGENT, "Accept": "*/*"}
    for header in action.get("httpHeaders") or ():
        name = str(header.get("name") or "")
        if name:
            headers[name] = str(header.get("value") or "")
    url = httpx.URL(f"{scheme}://{_host_port(host, port)}{path}")
    first_host = url.host
    # Like kubelet: no certificate checks, no proxies, no connection reuse.
    async with httpx.AsyncClient(
        verify=False,
        follow_redirects=False,
        trust_env=False,
        timeout=within,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        with trio.move_on_after(within):
            try:
                for _ in range(_MAX_REDIRECTS + 1):
                    response = await client.get(url, headers=headers)
                    location = response.headers.get("location")
                    if not (300 <= response.status_code < 400 and location):
                        return response.status_code
                    target = url.join(location)
                    if target.host != first_host:
                        # kubelet stops at a redirect to another host and takes it as success.
                        return response.status_code
                    url = target
                return ProbeOutcome(
                    ProbeResult.FAILURE, f'Get "{url}": stopped after {_MAX_REDIRECTS} redirects'
                )
            except httpx.TimeoutException:
                pass
            except httpx.HTTPError as e:
                return ProbeOutcome(ProbeResult.FAILURE, f'Get "{url}": {e or type(e).__name__}')
    return ProbeOutcome(
        ProbeResult.FAILURE,
        f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
    )


async def _tcp(host: str, port: int, *, within: float) -> ProbeOutcome:
    address = _host_port(host, port)
    with trio.move_on_after(within):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as e:
            return ProbeOutcome(ProbeResult.FAILURE, f"dial tcp {address}: {e.strerror or e}")
        await stream.aclose()
        return ProbeOutcome(ProbeResult.SUCCESS)
    return ProbeOutcome(ProbeResult.FAILURE, f"dial tcp {address}: i/o timeout")


async def _grpc(host: str, port: int, service: str, *, within: float) -> ProbeOutcome:
    target = _host_port(host, port)
    with trio.move_on_after(within + _EXEC_GRACE):
        return await trio.to_thread.run_sync(
            _grpc_check, target, service, within, abandon_on_cancel=True
        )
    return ProbeOutcome(
        ProbeResult.FAILURE, f"timeout: health rpc did not complete within {within:g}s"
    )


def _grpc_check(target: str, service: str, timeout: float) -> ProbeOutcome:
    """`grpc.health.v1.Health/Check`, its two tiny messages encoded by hand."""
    encoded = service.encode()
    request = b"\x0a" + _varint(len(encoded)) + encoded if encoded else b""
    with grpc.insecure_channel(target) as channel:
        check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/grpc.health.v1.Health/Check"
        )
        try:
            response = check(request, timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else None
            details = e.details() if isinstance(e, grpc.Call) else str(e)
            if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                return ProbeOutcome(
                    ProbeResult.FAILURE,
                    f'timeout: failed to connect service "{target}" within {timeout:g}s',
                )
            if code is grpc.StatusCode.UNIMPLEMENTED:
                return ProbeOutcome(
                    ProbeResult.FAILURE,
                    "error: this server does not implement the grpc health protocol "
                    f"(grpc.health.v1.Health): {details}",
                )
            return ProbeOutcome(ProbeResult.FAILURE, f"error: health rpc probe failed: {details}")
    status = _health_status(response if isinstance(response, bytes) else b"")
    if status == 1:
        return ProbeOutcome(ProbeResult.SUCCESS)
    return ProbeOutcome(
        ProbeResult.FAILURE,
        f'service unhealthy (responded with "{_GRPC_STATUSES.get(status, str(status))}")',
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    raise ValueError("truncated varint")


def _health_status(data: bytes) -> int:
    """Field 1 (`status`) of a HealthCheckResponse; 0 (UNKNOWN) when absent or garbled."""
    pos = 0
    status = 0
    try:
        while pos < len(data):
            tag, pos = _read_varint(data, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                value, pos = _read_varint(data, pos)
                if field == 1:
                    status = value
            elif wire == 2:
                length, pos = _read_varint(data, pos)
                pos += length
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return 0
    except ValueError:
        return 0
    return status


# --- Lifecycle hooks --------------------------------------------------------------------


async def run_handler(
    handler: Mapping[str, Any],
    *,
    runtime: runtime.Runtime,
    container_id: str,
    pod_ip: str,
    container: Mapping[str, Any],
    timeout: float,  # noqa: ASYNC109
) -> HandlerResult:
    """Run a `postStart`/`preStop` handler once, within `timeout` seconds.

    exec succeeds on exit code 0; httpGet on any response (kubelet does not look at the
    status code of a hook); sleep sleeps `sleep.seconds` (cut short by `timeout`).
    """
    if (action := handler.get("exec")) is not None:
        command = [str(part) for part in action.get("command") or ()]
        text = " ".join(command)
        with trio.move_on_after(timeout + _EXEC_GRACE):
            try:
                result = await runtime.exec_sync(container_id, command, timeout=timeout)
            except runtime_errors.DeadlineExceeded:
                return HandlerResult(False, f'command "{text}" timed out')
            except runtime_errors.CRIError as e:
                return HandlerResult(False, f"command {text!r} could not run: {e}")
            output = (result.stdout + result.stderr).decode(errors="replace")
            if result.exit_code == 0:
                return HandlerResult(True, output)
            return HandlerResult(
                False, f"command '{text}' exited with {result.exit_code}: {output}"
            )
        return HandlerResult(False, f'command "{text}" timed out')
    if (action := handler.get("httpGet")) is not None:
        try:
            outcome = await _http_request(
                action, pod_ip=pod_ip, container=container, within=timeout
            )
        except _ProbeError as e:
            return HandlerResult(False, str(e))
        if isinstance(outcome, ProbeOutcome):
            return HandlerResult(False, outcome.message)
        return HandlerResult(True, f"HTTP lifecycle hook answered with statuscode: {outcome}")
    if (action := handler.get("sleep")) is not None:
        seconds = max(0, _int(action.get("seconds"), 0))
        await trio.sleep(min(float(seconds), timeout))
        return HandlerResult(True)
    if handler.get("tcpSocket") is not None:
        return HandlerResult(False, "tcpSocket lifecycle handlers are not supported")
    return HandlerResult(False, "the handler has no exec, httpGet or sleep action")
