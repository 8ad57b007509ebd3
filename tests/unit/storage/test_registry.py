"""Opening a store by URL, and the public face of the storage package."""

from __future__ import annotations

import pytest

from arktos_lite import storage


@pytest.mark.parametrize(
    "url", ["nosuch://x", "etcd2://localhost:2379", "state.db", "/var/state.db"]
)
async def test_unknown_url_scheme_raises_unknown_backend(url: str) -> None:
    with pytest.raises(storage.UnknownBackend) as caught:
        async with storage.open_store(url):
            pytest.fail("a store was opened")

    assert caught.value.url == url
    assert "sqlite" in str(caught.value)


def test_backends_are_exactly_the_known_schemes() -> None:
    assert set(storage.BACKENDS) == {"sqlite", "etcd", "etcd+https"}


async def test_in_memory_store_opens_empty() -> None:
    async with storage.open_store("sqlite://") as store:
        assert (await store.list("")).items == ()


def test_public_api() -> None:
    public = {name for name in dir(storage) if not name.startswith("_")}

    assert public == {
        "BACKENDS",
        "Backend",
        "Compacted",
        "Conflict",
        "Deleted",
        "Event",
        "EventType",
        "FutureRevision",
        "KeyExists",
        "KeyValue",
        "Lease",
        "LeaseNotFound",
        "LocalEtcd",
        "NotFound",
        "Options",
        "Page",
        "StorageError",
        "StoreClosed",
        "StoreInUse",
        "Unavailable",
        "UnknownBackend",
        "WatchOverflow",
        "etcd",
        "free_port",
        "open_store",
        "prefix_end",
    }


def test_every_storage_error_shares_one_base() -> None:
    errors = [
        value
        for value in vars(storage).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]

    assert len(errors) == 12
    assert all(issubclass(error, storage.StorageError) for error in errors)
