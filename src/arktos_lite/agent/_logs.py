"""Reading a container's CRI-format log files as `kubectl logs` shows them.

A CRI log file holds records `<RFC3339Nano> <stdout|stderr> <P|F> <text>`; `P` marks a
partial line that the next record continues. Rotated predecessors sit beside it as
`<path>.1` (newest), `<path>.2` …. `read_logs` yields the text of every line, oldest first,
with the options of `GET pods/x/log`: `tailLines` (the last n lines), `sinceSeconds` /
`sinceTime` (lines written at or after), `timestamps` (each line prefixed with its time),
`limitBytes` (stop after that much), and `follow`: keep reading as the file grows, across
rotations, until the container no longer runs and the file is drained.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import trio

logger = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_TIMESTAMP_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

# Whether the container still runs, asked while following its log.
Running = Callable[[], Awaitable[bool]]


class LogOptionsError(ValueError):
    """A log request parameter that cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    # Nanoseconds since the epoch; lines written before are left out.
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, now_ns: int) -> LogOptions:
        """Options from `GET pods/x/log` parameters; `now_ns` anchors `sinceSeconds`."""
        since_seconds = _int(query, "sinceSeconds", minimum=1)
        since_time = query.get("sinceTime")
        if since_seconds is not None and since_time:
            raise LogOptionsError("at most one of sinceTime or sinceSeconds may be specified")
        since_ns: int | None = None
        if since_seconds is not None:
            since_ns = now_ns - since_seconds * 1_000_000_000
        elif since_time:
            try:
                since_ns = parse_timestamp(since_time)
            except ValueError:
                raise LogOptionsError(
                    f"sinceTime: invalid value {since_time!r}: not an RFC 3339 time"
                ) from None
        return cls(
            follow=_bool(query, "follow"),
            previous=_bool(query, "previous"),
            tail_lines=_int(query, "tailLines", minimum=0),
            since_ns=since_ns,
            timestamps=_bool(query, "timestamps"),
            limit_bytes=_int(query, "limitBytes", minimum=1),
        )


def _bool(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value == "":
        # `?follow` alone means true, as Kubernetes' query decoding reads it.
        return value == ""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise LogOptionsError(f"{name}: invalid value {value!r}: not a boolean")


def _int(query: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise LogOptionsError(f"{name}: invalid value {value!r}: not an integer") from None
    if number < minimum:
        raise LogOptionsError(f"{name}: invalid value {number}: must be at least {minimum}")
    return number


def parse_timestamp(text: str) -> int:
    """An RFC 3339 time (with up to nanoseconds) as nanoseconds since the epoch."""
    match = _TIMESTAMP_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = match.groups()
    offset = "+00:00" if zone == "Z" else zone
    moment = datetime.datetime.fromisoformat(base + offset)
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One CRI log record."""

    timestamp: bytes
    time_ns: int
    stream: bytes
    partial: bool
    text: bytes


def parse_record(line: bytes) -> Record | None:
    """One line of a CRI log file (without its newline); None if it is not a record."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"P", b"F"):
        return None
    try:
        time_ns = parse_timestamp(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    text = parts[3] if len(parts) == 4 else b""
    return Record(parts[0], time_ns, parts[1], parts[2] == b"P", text)


def rotated_files(path: Path) -> list[Path]:
    """`path`'s rotated predecessors that exist, oldest first (`path.3`, `path.2`, …)."""
    numbered: list[tuple[int, Path]] = []
    try:
        siblings = list(path.parent.iterdir())
    except FileNotFoundError:
        return []
    prefix = path.name + "."
    for sibling in siblings:
        suffix = sibling.name.removeprefix(prefix)
        if sibling.name.startswith(prefix) and suffix.isdigit():
            numbered.append((int(suffix), sibling))
    return [p for _n, p in sorted(numbered, reverse=True)]


class _Writer:
    """Turns records into output: joins partial lines, prefixes times, counts bytes."""

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.remaining = options.limit_bytes
        self._line_start = True

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def write(self, records: list[Record]) -> bytes:
        out = bytearray()
        for record in records:
            if self.options.since_ns is not None and record.time_ns < self.options.since_ns:
                continue
            if self.options.timestamps and self._line_start:
                out += record.timestamp + b" "
            out += record.text
            if not record.partial:
                out += b"\n"
            self._line_start = not record.partial
        data = bytes(out)
        if self.remaining is not None:
            data = data[: self.remaining]
            self.remaining -= len(data)
        return data


def _tail(records: list[Record], lines: int) -> list[Record]:
    """The records of the last `lines` lines (a trailing partial line counts as one)."""
    if lines == 0:
        return []
    ends = [i for i, record in enumerate(records) if not record.partial]
    count = len(ends) + (1 if records and records[-1].partial else 0)
    if count <= lines:
        return records
    # The first record after the end of line number (count - lines).
    skip = count - lines
    return records[ends[skip - 1] + 1 :]


def _parse_lines(data: bytes) -> list[Record]:
    records = []
    for line in data.split(b"\n"):
        record = parse_record(line)
        if record is not None:
            records.append(record)
    return records


def _read_history(path: Path) -> tuple[bytes, int | None, int]:
    """Every whole record line so far (rotated files, then `path`), and `path`'s open fd and
    the offset in it after the last whole line."""
    try:
        fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None
    chunks = []
    for older in rotated_files(path):
        try:
            chunks.append(older.read_bytes())
        except FileNotFoundError:
            continue
    offset = 0
    if fd is not None:
        current = _read_all(fd)
        # A record still being written (no newline yet) is read with the next poll.
        offset = current.rfind(b"\n") + 1
        chunks.append(current[:offset])
        os.lseek(fd, offset, os.SEEK_SET)
    return b"\n".join(chunks), fd, offset


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, _READ_SIZE):
        chunks.append(chunk)
    return b"".join(chunks)


async def read_logs(
    path: Path,
    options: LogOptions,
    *,
    running: Running | None = None,
    poll_interval: float = 0.2,
) -> AsyncIterator[bytes]:
    """The log's text with `options` applied; see the module docs.

    With `options.follow`, `running` says whether the container still runs: the stream ends
    once it does not and the file has no more to read. Without it, following goes on until
    the caller stops reading.
    """
    writer = _Writer(options)
    history, fd, _offset = await trio.to_thread.run_sync(_read_history, path)
    try:
        records = _parse_lines(history)
        if options.tail_lines is not None:
            records = _tail(records, options.tail_lines)
        if data := writer.write(records):
            yield data
        if not options.follow or writer.done:
            return
        pending = b""
        while not writer.done:
            fresh = b""
            if fd is not None:
                fresh = await trio.to_thread.run_sync(_read_all, fd)
            if fresh:
                pending += fresh
                cut = pending.rfind(b"\n") + 1
                if cut:
                    if data := writer.write(_parse_lines(pending[:cut])):
                        yield data
                    pending = pending[cut:]
                continue
            reopened = await trio.to_thread.run_sync(_reopen_if_rotated, path, fd)
            if reopened != fd:
                # The old file is drained (just read to its end); go on with the new one.
                if fd is not None:
                    os.close(fd)
                fd, pending = reopened, b""
                continue
            if running is not None and not await running():
                # It may have written more between the read above and stopping.
                if fd is not None and (last := await trio.to_thread.run_sync(_read_all, fd)):
                    pending += last
                    continue
                return
            await trio.sleep(poll_interval)
    finally:
        if fd is not None:
            os.close(fd)


def _reopen_if_rotated(path: Path, fd: int | None) -> int | None:
    """A new fd if `path` now names another file than `fd` (rotated, or created), else `fd`."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return fd
    if fd is not None:
        mine = os.fstat(fd)
        if (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino):
            if current.st_size < os.lseek(fd, 0, os.SEEK_CUR):
                # Truncated in place: start over from its beginning.
                os.lseek(fd, 0, os.SEEK_SET)
            return fd
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return fd
