"""How the etcd store reaches etcd: past a dead endpoint, across an etcd restart under a
watch, over TLS with client certificates, and with a clear error when nothing answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

import _etcd_fixtures
from arktos_lite import storage
from arktos_lite.apiserver import _pki as pki
from arktos_lite.storage import _local_etcd

PROMPTLY = 20.0


async def test_a_dead_endpoint_is_skipped(etcd_server: storage.LocalEtcd) -> None:
    dead = _local_etcd.free_port()
    url = f"etcd://127.0.0.1:{dead},{etcd_server.endpoint}/failover-dead"

    with trio.fail_after(PROMPTLY):
        async with storage.open_store(url) as store, store.watch("/") as events:
            created = await store.create("/a", b"1")
            updated = await store.update("/a", b"2", expected_revision=created.mod_revision)
            assert (await store.list("/")).items == (updated,)
            assert [(await anext(events)).kv, (await anext(events)).kv] == [created, updated]


@pytest.mark.slow
async def test_a_watch_resumes_across_an_etcd_restart_without_loss(
    etcd_server: storage.LocalEtcd,
) -> None:
    url = f"{etcd_server.url}/failover-restart"
    async with storage.open_store(url) as store, store.watch("/w/") as events:
        before = await store.create("/w/before", b"")
        assert (await anext(events)).kv == before

        await trio.to_thread.run_sync(etcd_server.kill)
        with pytest.raises(storage.Unavailable):
            await store.create("/w/while-down", b"")
        await trio.to_thread.run_sync(etcd_server.start)

        after = [await store.create(f"/w/after-{i}", b"") for i in range(3)]
        with trio.fail_after(PROMPTLY):
            received = [(await anext(events)).kv for _ in after]

    assert received == after


async def test_no_answering_endpoint_fails_with_unavailable() -> None:
    url = f"etcd://127.0.0.1:{_local_etcd.free_port()}"

    with trio.fail_after(PROMPTLY), pytest.raises(storage.Unavailable, match="no etcd member"):
        async with storage.open_store(url):
            pass


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[storage.LocalEtcd]:
    _etcd_fixtures.require_etcd()
    directory = tmp_path_factory.mktemp("etcd-tls")
    files = pki.ensure_pki(directory, extra_sans=["127.0.0.1"])
    tls = _local_etcd.EtcdTLS(
        ca=files.ca_cert,
        cert=files.server_cert,
        key=files.server_key,
        client_cert=files.admin_cert,
        client_key=files.admin_key,
    )
    etcd = storage.LocalEtcd(directory / "data", tls=tls)
    etcd.start()
    try:
        yield etcd
    finally:
        etcd.stop()


async def test_tls_with_a_client_certificate(tls_etcd: storage.LocalEtcd) -> None:
    url = f"{tls_etcd.url}/tls{tls_etcd.url_query}"
    assert url.startswith("etcd+https://")

    async with storage.open_store(url) as store:
        kv = await store.create("/secret", b"over tls")
        assert await store.get("/secret") == kv


async def test_tls_without_a_client_certificate_is_refused(tls_etcd: storage.LocalEtcd) -> None:
    assert tls_etcd.tls is not None
    url = f"{tls_etcd.url}/tls?cacert={tls_etcd.tls.ca}"

    with trio.fail_after(PROMPTLY), pytest.raises(storage.StorageError):
        async with storage.open_store(url):
            pass
