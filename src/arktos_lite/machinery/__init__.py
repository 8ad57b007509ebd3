"""Controller machinery over the client, trio-native: what client-go gives Go controllers.

Reflectors keep informers' caches in step with the API server (list, watch, re-list on
410), informers index their objects and tell handlers of changes, a fair and stingy
rate-limited work queue feeds N workers, expectations keep a lagging cache from causing
double creates or deletes, and an event recorder writes Events without ever blocking.
"""

from arktos_lite.machinery._events import EventRecorder as EventRecorder, EventType as EventType
from arktos_lite.machinery._expectations import (
    EXPECTATIONS_TTL as EXPECTATIONS_TTL,
    Expectations as Expectations,
)
from arktos_lite.machinery._informer import (
    HandlerRegistration as HandlerRegistration,
    IndexFunc as IndexFunc,
    Informer as Informer,
    InformerFactory as InformerFactory,
    ObjectRef as ObjectRef,
    Store as Store,
    Transform as Transform,
    by_label as by_label,
    by_namespace as by_namespace,
    by_node_name as by_node_name,
    by_owner_uid as by_owner_uid,
    object_key as object_key,
    split_key as split_key,
    strip_managed_fields as strip_managed_fields,
)
from arktos_lite.machinery._reflector import (
    ClientListerWatcher as ClientListerWatcher,
    ListerWatcher as ListerWatcher,
    Reflector as Reflector,
    Selectors as Selectors,
    Sink as Sink,
    WatchEvent as WatchEvent,
    list_watch as list_watch,
)
from arktos_lite.machinery._workqueue import (
    BucketRateLimiter as BucketRateLimiter,
    ItemExponentialRateLimiter as ItemExponentialRateLimiter,
    MaxOfRateLimiter as MaxOfRateLimiter,
    RateLimiter as RateLimiter,
    Requeue as Requeue,
    ShutDown as ShutDown,
    WorkQueue as WorkQueue,
    default_rate_limiter as default_rate_limiter,
    run_workers as run_workers,
)

__all__ = [
    "EXPECTATIONS_TTL",
    "BucketRateLimiter",
    "ClientListerWatcher",
    "EventRecorder",
    "EventType",
    "Expectations",
    "HandlerRegistration",
    "IndexFunc",
    "Informer",
    "InformerFactory",
    "ItemExponentialRateLimiter",
    "ListerWatcher",
    "MaxOfRateLimiter",
    "ObjectRef",
    "RateLimiter",
    "Reflector",
    "Requeue",
    "Selectors",
    "ShutDown",
    "Sink",
    "Store",
    "Transform",
    "WatchEvent",
    "WorkQueue",
    "by_label",
    "by_namespace",
    "by_node_name",
    "by_owner_uid",
    "default_rate_limiter",
    "list_watch",
    "object_key",
    "run_workers",
    "split_key",
    "strip_managed_fields",
]
