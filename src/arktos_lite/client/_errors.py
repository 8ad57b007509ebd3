"""What a failed request raises: the API's own error, or `Unreachable`.

Guarantees: an error answer whose body is a `Status` raises the `api.errors` class that
`StatusError.from_status` rebuilds from it, so callers catch `errors.NotFound` or
`errors.Conflict` exactly as the server raised them. Any other error body raises the class
that matches the HTTP status, with the body's text as the message. A server that could
not be reached (after the retries) raises `Unreachable`, never an httpx exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from arktos_lite.api import errors

# The reason kube-apiserver gives each status, for answers that carry no Status object.
_REASONS = {
    400: errors.Reason.BAD_REQUEST,
    401: errors.Reason.UNAUTHORIZED,
    403: errors.Reason.FORBIDDEN,
    404: errors.Reason.NOT_FOUND,
    405: errors.Reason.METHOD_NOT_ALLOWED,
    406: errors.Reason.NOT_ACCEPTABLE,
    409: errors.Reason.CONFLICT,
    410: errors.Reason.EXPIRED,
    413: errors.Reason.REQUEST_ENTITY_TOO_LARGE,
    415: errors.Reason.UNSUPPORTED_MEDIA_TYPE,
    422: errors.Reason.INVALID,
    429: errors.Reason.TOO_MANY_REQUESTS,
    500: errors.Reason.INTERNAL_ERROR,
    503: errors.Reason.SERVICE_UNAVAILABLE,
    504: errors.Reason.TIMEOUT,
}
_MAX_MESSAGE = 1000


class Unreachable(Exception):
    """The server could not be reached, or the connection broke, after the retries."""


def describe(error: BaseException) -> str:
    """What went wrong, in words: httpx often says it only in the exception's cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if str(current):
            return f"{type(error).__name__}: {current}"
        current = current.__cause__ or current.__context__
    return type(error).__name__


def status_error(status: int, body: bytes) -> errors.StatusError:
    """The error an answer with HTTP `status` and `body` stands for."""
    document: Any = None
    try:
        document = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, Mapping) and document.get("kind") == "Status":
        return errors.StatusError.from_status(document, code=status)
    text = body.decode("utf-8", errors="replace").strip()
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "…"
    reason = _REASONS.get(status)
    return errors.StatusError.from_status(
        {
            "code": status,
            "reason": reason.value if reason is not None else "",
            "message": text or f"the server answered HTTP {status}",
        }
    )


def from_watch_event(status: object) -> errors.StatusError:
    """The error a watch's ERROR event carries."""
    if isinstance(status, Mapping):
        return errors.StatusError.from_status(status, code=500)
    return errors.InternalError(f"the watch ended with an error event: {status!r}")
