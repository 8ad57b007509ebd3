"""The errors a runtime raises, one class per gRPC status the agent acts on.

Every `Runtime` implementation raises these, never gRPC's own errors, so the agent writes
`except runtime.NotFound` whether the runtime is in memory, in this process or containerd
behind a socket. The mapping to gRPC status codes is in exactly this module:
`from_status` turns a code a server sent into the class a client raises, and `status_code`
turns an error a servicer raised into the code it aborts the call with. The two are
inverse for every class here.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class CRIError(Exception):
    """A CRI call failed; `message` is the runtime's own explanation.

    Codes without a class of their own (UNKNOWN, PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...)
    arrive as a plain `CRIError` carrying the code.
    """

    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.name})"


class NotFound(CRIError):
    """No such sandbox, container or image."""

    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(CRIError):
    """A sandbox or container with the same metadata exists already."""

    default_code = grpc.StatusCode.ALREADY_EXISTS


class InvalidArgument(CRIError):
    """The request is malformed (an empty id, a missing config, a bad filter)."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(CRIError):
    """The object is in the wrong state (exec into a stopped container, start it twice)."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(CRIError):
    """The runtime cannot be reached (no socket, not listening, going away); retry later."""

    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(CRIError):
    """The call did not finish within its timeout."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unimplemented(CRIError):
    """The runtime does not offer this call (e.g. a VM call on a container runtime)."""

    default_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(CRIError):
    """The runtime failed by itself."""

    default_code = grpc.StatusCode.INTERNAL


_CLASSES: tuple[type[CRIError], ...] = (
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Unavailable,
    DeadlineExceeded,
    Unimplemented,
    Internal,
)


def from_status(code: grpc.StatusCode, message: str) -> CRIError:
    """The error a client raises for a call that ended with `code`.

    `code` must not be OK. The message is the server's details, or the code's name when
    the server sent none, so `str(error)` is never empty.
    """
    if code is grpc.StatusCode.OK:
        raise ValueError("an RPC that ended OK is not an error")
    text = message or code.name
    for cls in _CLASSES:
        if cls.default_code is code:
            return cls(text)
    return CRIError(text, code=code)


def status_code(error: BaseException) -> grpc.StatusCode:
    """The status a server answers with when a call failed with `error`.

    A `CRIError` keeps its code; anything else is a bug in the servicer and is INTERNAL.
    """
    if isinstance(error, CRIError):
        return error.code
    return grpc.StatusCode.INTERNAL
