"""The events of one watch response, as they arrive.

Guarantees: events come in the order the server sent them, one `WatchEvent` per line of
the stream. An ERROR event raises the `StatusError` it carries (`errors.Gone` for a
compacted resourceVersion) and ends the stream. The iteration ends when the server ends
the stream (at `timeoutSeconds`, or when it shuts down). A connection that breaks in the
middle raises `Unreachable`: resuming from the last version seen is the caller's choice,
so nothing is replayed or skipped behind its back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson
import trio

from arktos_lite.api import errors
from arktos_lite.client import _errors as client_errors, _retry as retry

logger = logging.getLogger(__name__)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

# Reads after the response is closed fail at once; this only bounds a misbehaving stream.
_DRAIN_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change: `type` is ADDED, MODIFIED, DELETED or BOOKMARK; `object` as sent."""

    type: str
    object: dict[str, Any]


class EventStream:
    """An async iterator of the `WatchEvent`s of one open watch response."""

    def __init__(self, response: httpx.Response, *, where: str) -> None:
        self._response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self._where = where
        # No more events for the caller (the stream ended, broke, or carried an error).
        self._done = False
        # httpx's line iterator has run to its end (or raised out of it).
        self._finished = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._done:
            try:
                line = await self._next_line()
            except StopAsyncIteration:
                self._done = True
                logger.debug("watch %s ended", self._where)
                break
            except retry.NETWORK_ERRORS as error:
                self._done = True
                raise client_errors.Unreachable(
                    f"watch {self._where}: the connection broke: {client_errors.describe(error)}"
                ) from error
            if line.strip():
                return self._event(line)
        raise StopAsyncIteration

    async def _next_line(self) -> str:
        try:
            return await anext(self._lines)
        except BaseException:
            self._finished = True
            raise

    def _event(self, line: str) -> WatchEvent:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._done = True
            raise errors.InternalError(
                f"watch {self._where}: the server sent a line that is not JSON: {line[:200]!r}"
            ) from None
        kind = event.get("type") if isinstance(event, Mapping) else None
        obj = event.get("object") if isinstance(event, Mapping) else None
        if kind == ERROR:
            self._done = True
            raise client_errors.from_watch_event(obj)
        if not isinstance(kind, str) or not isinstance(obj, dict):
            self._done = True
            raise errors.InternalError(
                f"watch {self._where}: the server sent an event without a type and an "
                f"object: {line[:200]!r}"
            )
        return WatchEvent(type=kind, object=obj)

    async def aclose(self) -> None:
        """Close the response; the connection is dropped unless the stream had ended."""
        self._done = True
        await self._response.aclose()
        if self._finished:
            return
        # httpx reads a body through a chain of async generators, and one left suspended
        # is finalized by the garbage collector, which trio reports as a ResourceWarning.
        # With the response closed every read fails at once, so reading on to that
        # failure ends the whole chain here.
        with trio.move_on_after(_DRAIN_TIMEOUT):
            try:
                while True:
                    await self._next_line()
            except (StopAsyncIteration, httpx.HTTPError, httpx.StreamError):
                pass
