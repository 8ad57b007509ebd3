"""The process runtime's streaming server: `exec` sessions over channel.k8s.io websockets.

The CRI `Exec` call (answered in a gRPC thread) registers the request with `prepare_exec`
and hands back a one-time URL; the first websocket to reach that URL within 30 seconds
runs the command in the container's context (the supervisor's `exec_spec`) and relays
stdin, stdout, stderr and terminal resizes (v5.channel.k8s.io or v4). A terminal request
gets a pseudo-terminal, others pipes. The session ends with the exit status on the error
channel and a normal close; a client that goes away takes the command's whole process
group with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import logging
import os
import secrets
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

import trio
import trio_websocket

from arktos_lite.runtime import _errors as errors, _stream as stream
from arktos_lite.runtime.cri import api_pb2 as cri

logger = logging.getLogger(__name__)

TOKEN_TTL = 30.0
# After the command exits, its output pipes may stay open in a background child it left
# behind; the session waits this long for them to drain, then ends anyway.
_DRAIN_TIMEOUT = 2.0
_READ_SIZE = 32 * 1024


class ExecSpec(Protocol):
    @property
    def argv(self) -> Sequence[str]: ...

    @property
    def env(self) -> Mapping[str, str]: ...

    @property
    def cwd(self) -> str: ...


class Supervisor(Protocol):
    """What the streaming server needs from the process supervisor."""

    def exec_spec(
        self, container_id: str, cmd: Sequence[str], *, tty: bool = False
    ) -> ExecSpec: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Pending:
    container_id: str
    cmd: tuple[str, ...]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    # time.monotonic(): prepare_exec runs in gRPC threads, outside trio's clock.
    expires: float


class StreamingServer:
    """Serves exec sessions prepared by `prepare_exec`; see the module docs."""

    def __init__(self, supervisor: Supervisor, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._supervisor = supervisor
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._base_url: str | None = None

    @property
    def base_url(self) -> str | None:
        return self._base_url

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; reports the base URL (`http://host:port`)."""
        async with trio.open_nursery() as nursery:
            server: trio_websocket.WebSocketServer = await nursery.start(
                lambda task_status: trio_websocket.serve_websocket(
                    self._handle,
                    self._host,
                    self._port,
                    None,
                    handler_nursery=nursery,
                    task_status=task_status,
                )
            )
            host = f"[{self._host}]" if ":" in self._host else self._host
            self._base_url = f"http://{host}:{server.port}"
            logger.info("exec streaming server listening on %s", self._base_url)
            task_status.started(self._base_url)
            try:
                await trio.sleep_forever()
            finally:
                self._base_url = None
                logger.info("exec streaming server stopped")

    def prepare_exec(self, request: cri.ExecRequest) -> str:
        """A one-time URL serving `request` (thread-safe); Unavailable before `run`."""
        base = self._base_url
        if base is None:
            raise errors.Unavailable("the exec streaming server is not running")
        if not request.cmd:
            raise errors.InvalidArgument("exec needs a command")
        if not (request.stdin or request.stdout or request.stderr):
            raise errors.InvalidArgument("one of stdin, stdout or stderr must be set")
        if request.tty and request.stderr:
            raise errors.InvalidArgument("stderr cannot be set with tty")
        token = secrets.token_urlsafe(18)
        now = time.monotonic()
        pending = _Pending(
            container_id=request.container_id,
            cmd=tuple(request.cmd),
            tty=request.tty,
            stdin=request.stdin,
            stdout=request.stdout,
            stderr=request.stderr,
            expires=now + TOKEN_TTL,
        )
        with self._lock:
            for old in [t for t, p in self._pending.items() if p.expires <= now]:
                del self._pending[old]
            self._pending[token] = pending
        return f"{base}/exec/{token}"

    def _take(self, token: str) -> _Pending | None:
        with self._lock:
            pending = self._pending.pop(token, None)
        if pending is None or pending.expires <= time.monotonic():
            return None
        return pending

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        path = request.path.split("?", 1)[0]
        kind, _, token = path.strip("/").partition("/")
        pending = self._take(token) if kind == "exec" else None
        if pending is None:
            await request.reject(404, body=b"no such exec session (or it expired)\n")
            return
        subprotocol = stream.choose_subprotocol(request.proposed_subprotocols)
        if subprotocol is None:
            offered = ", ".join(request.proposed_subprotocols) or "none"
            body = f"unsupported subprotocols ({offered}); use {', '.join(stream.SUBPROTOCOLS)}"
            await request.reject(400, body=body.encode())
            return
        ws = await request.accept(subprotocol=subprotocol)
        try:
            # A runc container makes the terminal inside itself.
            spec = await trio.to_thread.run_sync(
                functools.partial(
                    self._supervisor.exec_spec,
                    pending.container_id,
                    list(pending.cmd),
                    tty=pending.tty,
                )
            )
        except errors.CRIError as error:
            reason = "NotFound" if isinstance(error, errors.NotFound) else "InternalError"
            await _finish(ws, stream.error_status(str(error), reason=reason))
            return
        await _Session(ws, pending, spec, subprotocol=subprotocol).run()


async def _finish(ws: trio_websocket.WebSocketConnection, status: bytes) -> None:
    with contextlib.suppress(trio_websocket.ConnectionClosed):
        await ws.send_message(stream.encode(stream.Channel.ERROR, status))
        await ws.aclose()


class _Session:
    """One exec: the process, its streams and the websocket."""

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        pending: _Pending,
        spec: ExecSpec,
        *,
        subprotocol: str,
    ) -> None:
        self.ws = ws
        self.pending = pending
        self.spec = spec
        self.subprotocol = subprotocol
        self._pty: int | None = None
        self._stdin: trio.abc.SendStream | None = None

    async def run(self) -> None:
        pending = self.pending
        outputs: list[tuple[trio.abc.ReceiveStream, stream.Channel]] = []
        try:
            process = await self._spawn(outputs)
        except OSError as error:
            await _finish(self.ws, stream.error_status(f"cannot run {pending.cmd[0]}: {error}"))
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_client, process)
                async with trio.open_nursery() as pumps:
                    for output, channel in outputs:
                        pumps.start_soon(self._pump, output, channel)
                    await process.wait()
                    # Output written just before exit is still in the pipes: drain it.
                    pumps.cancel_scope.deadline = trio.current_time() + _DRAIN_TIMEOUT
                code = process.returncode
                assert code is not None
                await _finish(self.ws, stream.exit_status(_exit_code(code)))
                nursery.cancel_scope.cancel()
        finally:
            # Whatever ended the session (a client gone, cancellation), nothing it started
            # outlives it.
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                with trio.CancelScope(shield=True):
                    await process.wait()
            for output, _channel in outputs:
                with contextlib.suppress(trio.ClosedResourceError, OSError):
                    await trio.aclose_forcefully(output)
            if self._stdin is not None:
                await trio.aclose_forcefully(self._stdin)

    async def _spawn(
        self, outputs: list[tuple[trio.abc.ReceiveStream, stream.Channel]]
    ) -> trio.Process:
        pending, spec = self.pending, self.spec
        env = dict(spec.env)
        cwd = spec.cwd or None
        if pending.tty:
            master, slave = os.openpty()
            try:
                env.setdefault("TERM", "xterm")
                process = await trio.lowlevel.open_process(
                    list(spec.argv),
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    preexec_fn=_controlling_terminal,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            self._pty = master
            terminal = trio.lowlevel.FdStream(master)
            self._stdin = terminal
            if pending.stdout:
                outputs.append((terminal, stream.Channel.STDOUT))
            return process
        process = await trio.lowlevel.open_process(
            list(spec.argv),
            stdin=subprocess.PIPE if pending.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pending.stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE if pending.stderr else subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self._stdin = process.stdin
        if process.stdout is not None:
            outputs.append((process.stdout, stream.Channel.STDOUT))
        if process.stderr is not None:
            outputs.append((process.stderr, stream.Channel.STDERR))
        return process

    async def _pump(self, output: trio.abc.ReceiveStream, channel: stream.Channel) -> None:
        while True:
            try:
                data = await output.receive_some(_READ_SIZE)
            except trio.BrokenResourceError as error:
                # A pseudo-terminal's reader sees EIO once the last writer closed it.
                cause = error.__cause__
                if isinstance(cause, OSError) and cause.errno == errno.EIO:
                    return
                raise
            except trio.ClosedResourceError:
                return
            if not data:
                return
            try:
                await self.ws.send_message(stream.encode(channel, bytes(data)))
            except trio_websocket.ConnectionClosed:
                return

    async def _read_client(self, process: trio.Process) -> None:
        try:
            while True:
                message = await self.ws.get_message()
                try:
                    frame = stream.decode(message)
                except ValueError:
                    logger.debug("exec: ignored a malformed message")
                    continue
                await self._on_frame(frame)
        except trio_websocket.ConnectionClosed:
            if process.returncode is None:
                logger.debug("exec client left; killing %s", self.pending.cmd[0])
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)

    async def _on_frame(self, frame: stream.Frame) -> None:
        if frame.channel == stream.Channel.STDIN:
            if self._stdin is not None and self.pending.stdin and frame.data:
                # A command that stopped reading loses the rest, as with any pipe.
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._stdin.send_all(frame.data)
        elif frame.channel == stream.Channel.RESIZE:
            if self._pty is not None:
                try:
                    size = stream.parse_resize(frame.data)
                except ValueError as error:
                    logger.debug("exec: bad resize: %s", error)
                    return
                _set_size(self._pty, size)
        elif (
            frame.channel == stream.Channel.CLOSE
            and stream.supports_close(self.subprotocol)
            and frame.data[:1] == bytes((stream.Channel.STDIN,))
        ):
            await self._close_stdin()

    async def _close_stdin(self) -> None:
        if self._stdin is None:
            return
        if self._pty is not None:
            # A terminal's end of input is its EOF character; the fd also carries output.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stdin.send_all(b"\x04")
            return
        stdin, self._stdin = self._stdin, None
        await trio.aclose_forcefully(stdin)


def _controlling_terminal() -> None:
    """In the child, after setsid: make the pty on fd 0 its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_size(fd: int, size: stream.TerminalSize) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


def _exit_code(returncode: int) -> int:
    """A shell's view of how the command ended: 128 + signal for a killed one."""
    return 128 - returncode if returncode < 0 else returncode
