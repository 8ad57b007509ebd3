"""The client of Mizar's BuiltinsService: pod calls, their outcome, and Mizar's address.

Guarantees:

* Every call has a deadline (`timeout`, 3 s as in Arktos) and runs in a worker thread, so
  the trio task that awaits it is never blocked; cancelling the task abandons the thread,
  whose call ends at its deadline.
* A call returns only when Mizar answered `OK`. `TemporaryError` when Mizar answered
  `TEMP_ERROR` or the transport failed with `UNAVAILABLE` or `DEADLINE_EXCEEDED` (the
  caller retries with backoff); `PermanentError` for `PERM_ERROR`, any other gRPC status
  and an answer code this client does not know.
* One channel per client, opened on first use and closed by `close`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

import grpc
import trio

from arktos_lite.network.mizar import builtins_pb2 as pb, builtins_pb2_grpc as pb_grpc

CONFIGMAP: Final = "mizar-grpc-service"
"""The ConfigMap (system tenant, namespace `default`) that says where Mizar listens."""
CONFIGMAP_HOST_KEY: Final = "host"
"""Its key holding Mizar's host, as Arktos reads it; `host:port` is accepted too."""
DEFAULT_PORT: Final = 50052
"""The port Arktos calls Mizar on."""
NETWORK_LABEL: Final = "arktos.futurewei.com/network"

_TEMPORARY_STATUS: Final = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


class MizarError(Exception):
    """A pod call did not succeed."""


class TemporaryError(MizarError):
    """The call may succeed if made again later."""


class PermanentError(MizarError):
    """Making the call again will not help."""


def target_of(data: Mapping[str, Any]) -> str | None:
    """Mizar's gRPC target (`host:port`) from the ConfigMap's data; None without a host."""
    host = str(data.get(CONFIGMAP_HOST_KEY) or "").strip()
    if not host:
        return None
    if host.startswith("["):
        # An IPv6 literal, with or without its port.
        return host if "]:" in host else f"{host}:{DEFAULT_PORT}"
    if host.count(":") == 1:
        return host
    if ":" in host:
        return f"[{host}]:{DEFAULT_PORT}"
    return f"{host}:{DEFAULT_PORT}"


def pod_message(pod: Mapping[str, Any]) -> pb.BuiltinsPodMessage:
    """The message Mizar gets for a pod: its names, labels (JSON), network label, host IP,
    phase and annotations (which carry `mizar.com/vpc` and `mizar.com/subnet`)."""
    meta: Mapping[str, Any] = pod.get("metadata") or {}
    status: Mapping[str, Any] = pod.get("status") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    return pb.BuiltinsPodMessage(
        name=str(meta.get("name") or ""),
        host_ip=str(status.get("hostIP") or ""),
        namespace=str(meta.get("namespace") or ""),
        tenant=str(meta.get("tenant") or ""),
        labels=json.dumps(dict(labels), sort_keys=True) if labels else "",
        arktos_network=str(labels.get(NETWORK_LABEL, "")),
        phase=str(status.get("phase") or ""),
        annotations={str(k): str(v) for k, v in annotations.items()},
    )


class MizarClient:
    """Pod calls to one Mizar BuiltinsService."""

    def __init__(
        self, target: str, *, timeout: float = 3.0, limiter: trio.CapacityLimiter | None = None
    ) -> None:
        self.target = target
        self._timeout = timeout
        self._limiter = limiter or trio.CapacityLimiter(4)
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.BuiltinsServiceStub | None = None

    def close(self) -> None:
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    async def create_pod(self, pod: Mapping[str, Any]) -> None:
        await self._call("CreatePod", pod)

    async def update_pod(self, pod: Mapping[str, Any]) -> None:
        await self._call("UpdatePod", pod)

    async def delete_pod(self, pod: Mapping[str, Any]) -> None:
        await self._call("DeletePod", pod)

    def _method(self, name: str) -> Callable[..., pb.ReturnCode]:
        with self._lock:
            if self._stub is None:
                self._channel = grpc.insecure_channel(self.target)
                self._stub = pb_grpc.BuiltinsServiceStub(self._channel)  # type: ignore[no-untyped-call]
            method: Callable[..., pb.ReturnCode] = getattr(self._stub, name)
            return method

    async def _call(self, name: str, pod: Mapping[str, Any]) -> None:
        message = pod_message(pod)
        method = self._method(name)

        def call() -> pb.ReturnCode:
            return method(message, timeout=self._timeout)

        try:
            answer = await trio.to_thread.run_sync(
                call, limiter=self._limiter, abandon_on_cancel=True
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            text = f"{name} to {self.target}: {code.name if code else 'error'}: " + (
                exc.details() if isinstance(exc, grpc.Call) else str(exc)
            )
            if code in _TEMPORARY_STATUS:
                raise TemporaryError(text) from None
            raise PermanentError(text) from None
        if answer.code == pb.OK:
            return
        try:
            code_name = pb.CodeType.Name(answer.code)
        except ValueError:
            code_name = f"code {answer.code}"
        text = f"{name}: Mizar answered {code_name}: {answer.message}"
        if answer.code == pb.TEMP_ERROR:
            raise TemporaryError(text)
        raise PermanentError(text)
