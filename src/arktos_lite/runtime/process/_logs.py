"""Container output in the CRI log format, from raw files the processes append to.

A container's stdout and stderr go straight into raw files (opened O_APPEND by the
process), never through a pipe the runtime holds, so output survives the runtime exiting.
`LogPump` converts what was appended into CRI log lines::

    2026-01-02T03:04:05.123456789Z stdout F hello

A line longer than 16 KiB is split into `P` (partial) records ending with an `F` one. The
positions already converted are persisted, so a restarted runtime continues where the
previous one stopped without repeating lines. `CriLogWriter` rotates the log by size
(`0.log`, `0.log.1`, ... keeping `max_files` files) and reopens it on request (kubelet's
ReopenContainerLog after it moved the file).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import threading
import time
from pathlib import Path

MAX_LINE = 16 * 1024
_READ_CHUNK = 256 * 1024
# Raw files are truncated once fully converted and at least this big, so a chatty
# long-running container does not fill the disk twice.
_TRUNCATE_AT = 1024 * 1024
# An unterminated line (a prompt, a progress bar) is written as partial after this long.
_STALE_PARTIAL = 2.0
STREAMS = ("stdout", "stderr")


def timestamp(ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC, as containerd writes it."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def rotated_paths(path: Path, max_files: int) -> list[Path]:
    """The log file and its rotated predecessors, newest first."""
    return [path] + [path.with_name(f"{path.name}.{i}") for i in range(1, max(1, max_files))]


class CriLogWriter:
    """Appends CRI log records to one file, rotating it by size. Thread-safe."""

    def __init__(self, path: Path, *, max_bytes: int, max_files: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._max_files = max(1, max_files)
        self._lock = threading.Lock()
        self._file = self._open()

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, tag: str, text: bytes, *, now_ns: int | None = None) -> None:
        record = b"%s %s %s %s\n" % (
            timestamp(now_ns if now_ns is not None else time.time_ns()).encode(),
            stream.encode(),
            tag.encode(),
            text,
        )
        with self._lock:
            if self._file < 0:
                return
            size = os.fstat(self._file).st_size
            if size > 0 and size + len(record) > self._max_bytes:
                self._rotate()
            os.write(self._file, record)

    def _rotate(self) -> None:
        os.close(self._file)
        self._file = -1
        paths = rotated_paths(self.path, self._max_files)
        with contextlib.suppress(FileNotFoundError):
            paths[-1].unlink()
        for older, newer in zip(reversed(paths[1:]), reversed(paths[:-1]), strict=True):
            with contextlib.suppress(FileNotFoundError):
                newer.rename(older)
        if self._max_files == 1:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._file = self._open()

    def reopen(self) -> None:
        with self._lock:
            if self._file >= 0:
                os.close(self._file)
            self._file = self._open()

    def close(self) -> None:
        with self._lock:
            if self._file >= 0:
                os.close(self._file)
                self._file = -1


class LogPump:
    """Converts what a container appended to its raw stdout/stderr files into CRI records.

    Not thread-safe: one monitor thread per container calls `pump()` and `finish()`.
    """

    def __init__(self, *, raw_dir: Path, writer: CriLogWriter, state_path: Path) -> None:
        self._raw = {s: raw_dir / s for s in STREAMS}
        self._writer = writer
        self._state_path = state_path
        self._offsets = dict.fromkeys(STREAMS, 0)
        with contextlib.suppress(OSError, ValueError, TypeError):
            saved = json.loads(state_path.read_text())
            for s in STREAMS:
                self._offsets[s] = int(saved.get(s, 0))
        self._pending = dict.fromkeys(STREAMS, b"")
        self._pending_since = dict.fromkeys(STREAMS, 0.0)

    def pump(self) -> bool:
        """Convert new output; True when there was any."""
        moved = False
        for stream in STREAMS:
            moved |= self._pump_stream(stream, final=False)
        if moved:
            self._save()
        return moved

    def finish(self) -> None:
        """Convert everything left, unterminated last lines included (the process ended)."""
        for stream in STREAMS:
            self._pump_stream(stream, final=True)
        self._save()

    def _pump_stream(self, stream: str, *, final: bool) -> bool:
        path = self._raw[stream]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        moved = False
        try:
            # The raw offset of the first byte not yet read; pending bytes lie before it.
            read_at = self._offsets[stream] + len(self._pending[stream])
            size = os.fstat(fd).st_size
            if size < read_at:
                # Truncated behind our back: start over with what is there now.
                self._offsets[stream] = 0
                self._pending[stream] = b""
                read_at = 0
            while True:
                chunk = os.pread(fd, _READ_CHUNK, read_at)
                if not chunk:
                    break
                read_at += len(chunk)
                self._consume(stream, chunk)
                moved = True
            now = time.monotonic()
            pending = self._pending[stream]
            if pending and (final or now - self._pending_since[stream] > _STALE_PARTIAL):
                self._emit(stream, "F" if final else "P", pending)
                self._pending[stream] = b""
            if (
                not self._pending[stream]
                and read_at >= _TRUNCATE_AT
                and os.fstat(fd).st_size == read_at
            ):
                # Copy-truncate: the writer appends (O_APPEND) so it continues at offset 0.
                os.truncate(path, 0)
                self._offsets[stream] = 0
                moved = True
        finally:
            os.close(fd)
        return moved

    def _consume(self, stream: str, chunk: bytes) -> None:
        had_pending = bool(self._pending[stream])
        lines = (self._pending[stream] + chunk).split(b"\n")
        for line in lines[:-1]:
            while len(line) > MAX_LINE:
                self._emit(stream, "P", line[:MAX_LINE])
                line = line[MAX_LINE:]
            self._emit(stream, "F", line, consumed=len(line) + 1)
            had_pending = False
        rest = lines[-1]
        while len(rest) >= MAX_LINE:
            self._emit(stream, "P", rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
            had_pending = False
        if rest and not had_pending:
            self._pending_since[stream] = time.monotonic()
        self._pending[stream] = rest

    def _emit(self, stream: str, tag: str, text: bytes, *, consumed: int | None = None) -> None:
        self._writer.write(stream, tag, text)
        # Offsets count the raw bytes already turned into records (a line's newline too).
        self._offsets[stream] += len(text) if consumed is None else consumed

    def _save(self) -> None:
        tmp = self._state_path.with_name(self._state_path.name + ".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self._offsets))
            os.replace(tmp, self._state_path)
