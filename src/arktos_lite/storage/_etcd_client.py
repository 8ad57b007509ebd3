"""gRPC to the members of one etcd cluster, as trio calls, with fail-over.

* One channel per endpoint. Calls go to the current member; when it answers UNAVAILABLE
  the next member becomes current. A read, or a write whose channel had no connection
  when it was sent (so nothing left this process), is retried on every other member
  before it fails with `Unavailable`; a write that may have reached a member that then
  vanished fails with `Unavailable` at once, saying that its outcome is unknown.
* Unary calls use gRPC's own futures and wake trio from gRPC's thread, so no worker
  thread is parked per call; cancelling the trio task cancels the RPC on the wire.
  Streams (watches, lease keep-alives) read their responses in worker threads, because
  the blocking API is the only one gRPC offers for streams outside asyncio.
* Every unary call has a deadline; a member that does not answer within it counts as
  unavailable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import grpc
import trio
from google.protobuf import message

from arktos_lite.storage import _errors
from arktos_lite.storage.etcd import rpc_pb2_grpc

logger = logging.getLogger(__name__)

_Response = TypeVar("_Response", bound=message.Message)
_T = TypeVar("_T")

# gRPC's default cap (4 MiB) is far below a list of many objects; etcd itself caps requests.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # Find a dead connection under a quiet watch; etcd accepts pings every 5 s or slower.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


@dataclasses.dataclass(frozen=True, slots=True)
class TLS:
    """PEM files for a TLS connection: the CA to trust, and optionally a client identity."""

    ca: bytes | None
    cert: bytes | None
    key: bytes | None


class Member:
    """One endpoint: its channel, stubs and last known connectivity."""

    def __init__(self, endpoint: str, tls: TLS | None) -> None:
        self.endpoint = endpoint
        if tls is None:
            self.channel = grpc.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
            )
            self.channel = grpc.secure_channel(endpoint, credentials, options=_CHANNEL_OPTIONS)
        # The generated stubs are untyped; callers name the response type.
        self.kv = rpc_pb2_grpc.KVStub(self.channel)  # type: ignore[no-untyped-call]
        self.watch = rpc_pb2_grpc.WatchStub(self.channel)  # type: ignore[no-untyped-call]
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)  # type: ignore[no-untyped-call]
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(self.channel)  # type: ignore[no-untyped-call]
        self.connectivity = grpc.ChannelConnectivity.IDLE
        self.channel.subscribe(self._on_connectivity, try_to_connect=False)

    def _on_connectivity(self, state: grpc.ChannelConnectivity) -> None:
        # On a gRPC thread: a plain attribute store.
        self.connectivity = state

    def close(self) -> None:
        self.channel.unsubscribe(self._on_connectivity)
        self.channel.close()


class Client:
    """The members of one etcd cluster; `unary` and `stream_first` call the current one."""

    def __init__(
        self, endpoints: Sequence[str], *, tls: TLS | None = None, timeout: float = 15.0
    ) -> None:
        if not endpoints:
            raise ValueError("an etcd client needs at least one endpoint")
        self.members = [Member(endpoint, tls) for endpoint in endpoints]
        self.timeout = timeout
        self._current = 0
        # Streams park one worker thread each while they wait for a response.
        self.stream_limiter = trio.CapacityLimiter(math.inf)

    @property
    def endpoints(self) -> list[str]:
        return [member.endpoint for member in self.members]

    def rotation(self) -> Iterator[Member]:
        """Every member once, the current one first."""
        count = len(self.members)
        start = self._current
        for offset in range(count):
            yield self.members[(start + offset) % count]

    def failed(self, member: Member) -> None:
        """`member` did not answer: the next one becomes current."""
        index = self.members.index(member)
        if index == self._current:
            self._current = (index + 1) % len(self.members)
            if len(self.members) > 1:
                logger.warning(
                    "etcd %s unavailable; trying %s",
                    member.endpoint,
                    self.members[self._current].endpoint,
                )

    async def unary(
        self,
        method: Callable[[Member], Any],
        request: message.Message,
        response_type: type[_Response],
        *,
        idempotent: bool,
    ) -> _Response:
        """Call `method(member)` with `request` on the current member, failing over.

        Raises `grpc.RpcError` for any status but UNAVAILABLE (the caller maps it), and
        `Unavailable` when no member answered.
        """
        last: grpc.RpcError | None = None
        for member in self.rotation():
            unsent = member.connectivity is not grpc.ChannelConnectivity.READY
            try:
                return await self._call(method(member), request, response_type)
            except grpc.RpcError as error:
                code = error.code()
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                last = error
                self.failed(member)
                if not (idempotent or (unsent and code is grpc.StatusCode.UNAVAILABLE)):
                    raise _errors.Unavailable(
                        f"etcd {member.endpoint} went away during a write, whose outcome "
                        f"is unknown: {error.details()}"
                    ) from None
        assert last is not None
        raise _errors.Unavailable(
            f"no etcd member answered ({', '.join(self.endpoints)}): {last.details()}"
        )

    async def _call(
        self, method: Any, request: message.Message, response_type: type[_Response]
    ) -> _Response:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: object) -> None:
            # Runs on a gRPC thread (or right here when the call already ended).
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future = method.future(request, timeout=self.timeout)
        try:
            future.add_done_callback(wake)
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        try:
            return cast(_Response, future.result())
        except grpc.FutureCancelledError:
            raise _errors.StoreClosed("the call to etcd was cancelled") from None

    async def stream_first(
        self,
        method: Callable[[Member], Any],
        request: message.Message,
        response_type: type[_Response],
    ) -> _Response:
        """Open a stream with one request, return its first response, close the stream.

        For idempotent requests only (a lease keep-alive): it fails over like a read.
        """
        last: grpc.RpcError | None = None
        for member in self.rotation():
            call = method(member)(iter([request]), timeout=self.timeout)
            try:
                return await trio.to_thread.run_sync(
                    _first, call, abandon_on_cancel=True, limiter=self.stream_limiter
                )
            except grpc.RpcError as error:
                if error.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise
                last = error
                self.failed(member)
            finally:
                call.cancel()
        assert last is not None
        raise _errors.Unavailable(
            f"no etcd member answered ({', '.join(self.endpoints)}): {last.details()}"
        )

    def close(self) -> None:
        for member in self.members:
            member.close()


def _first(call: Iterator[_T]) -> _T:
    for response in call:
        return response
    raise _errors.StorageError("etcd closed the stream without an answer")
