"""Helpers for exec tests: a stub supervisor running host commands, and a channel client."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import trio_websocket

from arktos_lite.runtime import _errors as errors, _stream as stream


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str


class StubSupervisor:
    """Runs the exec'd command on the host; container `gone` does not exist."""

    def exec_spec(self, container_id: str, cmd: Sequence[str], *, tty: bool = False) -> Spec:
        if container_id == "gone":
            raise errors.NotFound(f"container {container_id} not found")
        if container_id == "stopped":
            raise errors.FailedPrecondition(f"container {container_id} is not running")
        return Spec(argv=list(cmd), env={"PATH": os.environ["PATH"]}, cwd="/")


@dataclasses.dataclass
class Outcome:
    stdout: bytes
    stderr: bytes
    status: stream.ExitStatus | None


async def collect(ws: trio_websocket.WebSocketConnection) -> Outcome:
    """Read frames until the server closes; what each channel carried."""
    out, err = bytearray(), bytearray()
    status: stream.ExitStatus | None = None
    try:
        while True:
            frame = stream.decode(await ws.get_message())
            if frame.channel == stream.Channel.STDOUT:
                out += frame.data
            elif frame.channel == stream.Channel.STDERR:
                err += frame.data
            elif frame.channel == stream.Channel.ERROR:
                status = stream.parse_exit_status(frame.data)
    except trio_websocket.ConnectionClosed:
        pass
    return Outcome(bytes(out), bytes(err), status)
