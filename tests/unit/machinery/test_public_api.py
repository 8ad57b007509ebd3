"""The public face of the machinery package."""

from __future__ import annotations

from arktos_lite import machinery


def test_public_api() -> None:
    public = {name for name in dir(machinery) if not name.startswith("_")}

    assert public == set(machinery.__all__)
    assert public == {
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
    }
