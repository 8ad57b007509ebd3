"""The revisioned key-value store under the API server (etcd's data model).

Open one with `open_store(url)`; the backend is chosen by the URL's scheme.
Only the API server imports this package. `LocalEtcd` and `free_port` (an etcd server
for tests, benchmarks and topologies) load etcd's gRPC stubs when first asked for.
"""

import typing as _typing

from arktos_lite.storage._backend import Backend as Backend
from arktos_lite.storage._errors import (
    Compacted as Compacted,
    Conflict as Conflict,
    FutureRevision as FutureRevision,
    KeyExists as KeyExists,
    LeaseNotFound as LeaseNotFound,
    NotFound as NotFound,
    StorageError as StorageError,
    StoreClosed as StoreClosed,
    StoreInUse as StoreInUse,
    Unavailable as Unavailable,
    UnknownBackend as UnknownBackend,
    WatchOverflow as WatchOverflow,
)
from arktos_lite.storage._registry import BACKENDS as BACKENDS, open_store as open_store
from arktos_lite.storage._types import (
    Deleted as Deleted,
    Event as Event,
    EventType as EventType,
    KeyValue as KeyValue,
    Lease as Lease,
    Options as Options,
    Page as Page,
    prefix_end as prefix_end,
)

if _typing.TYPE_CHECKING:
    from arktos_lite.storage._local_etcd import LocalEtcd as LocalEtcd, free_port as free_port


_LAZY = ("LocalEtcd", "free_port")


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        from arktos_lite.storage import _local_etcd

        return getattr(_local_etcd, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
