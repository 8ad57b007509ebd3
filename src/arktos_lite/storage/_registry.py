"""Choosing a backend by the scheme of a store URL, from an explicit registry.

`sqlite:///path/state.db` opens (or creates) a file; `sqlite://` is an in-memory store for
tests. `etcd://host:port[,host:port...][/key-prefix]` is an etcd cluster, and
`etcd+https://...?cacert=CA.pem&cert=CLIENT.pem&key=CLIENT-KEY.pem` the same over TLS (see
`_etcd`). Nothing registers itself on import: the table below is the whole list. A
backend's module (and what it needs: gRPC stubs for etcd) is imported when a store of its
scheme is opened, so a server on SQLite does not carry etcd's client in memory.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Callable

from arktos_lite.storage import _backend, _errors, _types

Opener = Callable[
    [urllib.parse.SplitResult, _types.Options],
    contextlib.AbstractAsyncContextManager[_backend.Backend],
]


def _open_sqlite(
    parts: urllib.parse.SplitResult, options: _types.Options
) -> contextlib.AbstractAsyncContextManager[_backend.Backend]:
    from arktos_lite.storage import _sqlite

    return _sqlite.open_sqlite(parts, options)


def _open_etcd(
    parts: urllib.parse.SplitResult, options: _types.Options
) -> contextlib.AbstractAsyncContextManager[_backend.Backend]:
    from arktos_lite.storage import _etcd

    return _etcd.open_etcd(parts, options)


BACKENDS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
    "etcd": _open_etcd,
    "etcd+https": _open_etcd,
}


@contextlib.asynccontextmanager
async def open_store(
    url: str, options: _types.Options | None = None
) -> AsyncIterator[_backend.Backend]:
    """Open the store named by `url` for the duration of the block, then close it."""
    parts = urllib.parse.urlsplit(url)
    opener = BACKENDS.get(parts.scheme)
    if opener is None:
        raise _errors.UnknownBackend(url, list(BACKENDS))
    async with opener(parts, options or _types.Options()) as backend:
        yield backend
