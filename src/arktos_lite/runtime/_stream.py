"""The channel.k8s.io websocket protocol of `kubectl exec` and `attach`, as values and bytes.

Every binary message starts with one byte naming its channel: stdin, stdout, stderr, the
error channel (one `metav1.Status` JSON: the exit status) and resize (`{"Width", "Height"}`).
v5.channel.k8s.io adds the close signal `255, <channel>`: the sender's stream on that
channel ended (stdin reached EOF). The runtime's streaming server, the agent relay and the
API server share these pieces, so they all write exactly what client-go reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import orjson
import trio
import trio_websocket

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
# What a server here speaks, best first. kubectl 1.32 offers only v5; v4 has no close signal.
SUBPROTOCOLS = (V5, V4)


class Channel(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    ERROR = 3
    RESIZE = 4
    CLOSE = 255


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    channel: int
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class ExitStatus:
    """What the error channel said: an exit code, or a failure that is not one."""

    exit_code: int | None
    message: str = ""

    @property
    def success(self) -> bool:
        return self.exit_code == 0


@dataclasses.dataclass(frozen=True, slots=True)
class TerminalSize:
    width: int
    height: int


def choose_subprotocol(offered: Iterable[str]) -> str | None:
    """The first subprotocol the client offered that we speak, or None."""
    for protocol in offered:
        if protocol.strip() in SUBPROTOCOLS:
            return protocol.strip()
    return None


def supports_close(subprotocol: str | None) -> bool:
    return subprotocol == V5


def encode(channel: int, data: bytes = b"") -> bytes:
    if not 0 <= channel <= 255:
        raise ValueError(f"channel {channel} is not a byte")
    return bytes((channel,)) + data


def decode(message: bytes | bytearray | str) -> Frame:
    """One websocket message as a frame; ValueError for an empty or text message."""
    if isinstance(message, str):
        raise ValueError("channel.k8s.io messages are binary, not text")
    if not message:
        raise ValueError("an empty message names no channel")
    return Frame(channel=message[0], data=bytes(message[1:]))


def close_message(channel: int) -> bytes:
    """v5's signal that this side's stream on `channel` ended."""
    return encode(Channel.CLOSE, bytes((channel,)))


def exit_status(exit_code: int) -> bytes:
    """The error channel's message for a command that exited with `exit_code`."""
    if exit_code == 0:
        return orjson.dumps(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )
    return orjson.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit code {exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }
    )


def error_status(message: str, *, reason: str = "InternalError", code: int = 500) -> bytes:
    """The error channel's message for a failure that is not the command's exit code."""
    return orjson.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    )


def parse_exit_status(data: bytes) -> ExitStatus:
    """Read an error-channel message as client-go does; ValueError if it is no Status."""
    try:
        status = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"the error channel sent no JSON: {error}") from None
    if not isinstance(status, dict):
        raise ValueError("the error channel sent no Status object")
    if status.get("status") == "Success":
        return ExitStatus(exit_code=0)
    message = str(status.get("message", ""))
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or ():
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return ExitStatus(exit_code=int(cause.get("message", "")), message=message)
                except ValueError:
                    break
    return ExitStatus(exit_code=None, message=message or "unknown error")


def parse_resize(data: bytes) -> TerminalSize:
    """A resize message's size; ValueError unless it is `{"Width": w, "Height": h}`."""
    try:
        size = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"a resize message is not JSON: {error}") from None
    if not isinstance(size, dict):
        raise ValueError("a resize message is not a JSON object")
    width, height = size.get("Width"), size.get("Height")
    for value in (width, height):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"a resize message needs Width and Height in 0..65535, not {size}")
    assert isinstance(width, int)
    assert isinstance(height, int)
    return TerminalSize(width=width, height=height)


def resize_message(size: TerminalSize) -> bytes:
    return encode(Channel.RESIZE, orjson.dumps({"Width": size.width, "Height": size.height}))


def websocket_url(url: str) -> str:
    """`http://…` → `ws://…`, `https://…` → `wss://…` (runtimes hand out http URLs)."""
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(plain):
            return secure + url.removeprefix(plain)
    return url


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    subprotocols: Iterable[str],
    ssl_context: ssl.SSLContext | None = None,
    headers: Iterable[tuple[str, str]] = (),
    connect_timeout: float = 30.0,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A client websocket to a channel.k8s.io server (`http(s)://` URLs too).

    Raises `trio_websocket.ConnectionRejected` when the server answers without upgrading,
    `OSError` when it cannot be reached. Exceptions come out unwrapped from trio's groups.
    """
    parts = urllib.parse.urlsplit(websocket_url(url))
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a websocket URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rpartition("@")[2]
    # The TCP stream is ours, not trio-websocket's: its 0.12 client leaks the socket when
    # the server rejects the upgrade or closes first.
    tcp: trio.abc.Stream
    with trio.fail_after(connect_timeout):
        if secure:
            tcp = await trio.open_ssl_over_tcp_stream(
                parts.hostname,
                port,
                ssl_context=ssl_context or ssl.create_default_context(),
                https_compatible=True,
            )
        else:
            tcp = await trio.open_tcp_stream(parts.hostname, port)
    try:
        async with _unwrapped(), trio.open_nursery() as nursery:
            with trio.fail_after(connect_timeout):
                ws = await trio_websocket.wrap_client_stream(
                    nursery,
                    tcp,
                    host_header,
                    resource,
                    subprotocols=list(subprotocols),
                    extra_headers=[(k.encode(), v.encode()) for k, v in headers],
                )
            try:
                yield ws
            except BaseException:
                # Cancelled or failed: no close handshake (its reader may be cancelled
                # already); closing the TCP stream below tells the server.
                nursery.cancel_scope.cancel()
                raise
            with trio.move_on_after(5):
                await ws.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(tcp)


@contextlib.asynccontextmanager
async def _unwrapped() -> AsyncIterator[None]:
    """Re-raise a group holding a single exception (besides cancellations) as itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        errors = [e for e in leaves if not isinstance(e, trio.Cancelled)]
        if len(errors) == 1:
            raise errors[0] from None
        if not errors and leaves:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


async def relay(
    upstream: trio_websocket.WebSocketConnection,
    *,
    receive: Callable[[], Awaitable[bytes | str]],
    send: Callable[[bytes | str], Awaitable[None]],
) -> None:
    """Pass messages both ways between a served websocket (`receive`/`send`) and `upstream`.

    Returns once upstream closed, after everything it sent went on: the exit status is its
    last message. The caller closes its side; a caller cancelled (its client left) closes
    `upstream` by leaving `connect`.
    """
    async with trio.open_nursery() as nursery:

        async def down() -> None:
            try:
                while True:
                    await send(await upstream.get_message())
            except trio_websocket.ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()

        async def up() -> None:
            while True:
                message = await receive()
                try:
                    await upstream.send_message(message)
                except trio_websocket.ConnectionClosed:
                    return

        nursery.start_soon(down)
        nursery.start_soon(up)
