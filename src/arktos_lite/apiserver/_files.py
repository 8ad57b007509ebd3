"""Atomic writes of small secret files (keys, tokens, kubeconfigs).

`write_atomic` never leaves a half-written file at the destination and never lets the
content exist, even briefly, with looser permissions than asked for: the temporary file is
created 0600 in the same directory, restricted to `mode`, written, synced and renamed over.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


def write_atomic(path: pathlib.Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data`, readable as `mode`; a crash leaves the old or the new file."""
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    temp = pathlib.Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _sync_directory(directory)


def _sync_directory(directory: pathlib.Path) -> None:
    # The rename is durable only once the directory entry is.
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
