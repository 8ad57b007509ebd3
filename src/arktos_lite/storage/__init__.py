"""The revisioned key-value store under the API server (etcd's data model).

Open one with `open_store(url)`; the backend is chosen by the URL's scheme.
Only the API server imports this package.
"""

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
from arktos_lite.storage._local_etcd import LocalEtcd as LocalEtcd, free_port as free_port
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
