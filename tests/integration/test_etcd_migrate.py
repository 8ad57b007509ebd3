"""`arktos store migrate`: real SQLite files, a real etcd, the real command line."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import trio

from arktos_lite import storage


async def _migrate(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "arktos_lite", "store", "migrate", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def _fill_sqlite(url: str, count: int) -> dict[str, bytes]:
    written = {}
    async with storage.open_store(url) as store:
        for i in range(count):
            key = f"/registry/pods/system/default/pod-{i:04d}"
            value = f'{{"kind":"Pod","metadata":{{"name":"pod-{i:04d}"}}}}'.encode()
            await store.create(key, value)
            written[key] = value
        # History that must not travel: an update and a delete.
        await store.update("/registry/pods/system/default/pod-0000", b'{"v":2}')
        written["/registry/pods/system/default/pod-0000"] = b'{"v":2}'
        await store.create("/registry/configmaps/system/default/gone", b"{}")
        await store.delete("/registry/configmaps/system/default/gone")
    return written


async def test_migrate_copies_every_current_object_from_sqlite_to_etcd(
    tmp_path: pathlib.Path, etcd_store: str
) -> None:
    source = f"sqlite:///{tmp_path / 'state.db'}"
    target = f"etcd://{etcd_store}"
    written = await _fill_sqlite(source, 450)

    done = await _migrate("--from", source, "--to", target)

    assert done.returncode == 0, done.stderr.decode()
    assert b"copied 450 objects" in done.stdout
    async with storage.open_store(target) as store:
        page = await store.list("")
        assert {kv.key: kv.value for kv in page.items} == written
        assert all(kv.version == 1 for kv in page.items)


async def test_migrate_refuses_a_target_that_is_not_empty_unless_forced(
    tmp_path: pathlib.Path, etcd_store: str
) -> None:
    source = f"sqlite:///{tmp_path / 'state.db'}"
    target = f"etcd://{etcd_store}"
    written = await _fill_sqlite(source, 3)
    async with storage.open_store(target) as store:
        await store.create("/registry/pods/system/default/pod-0001", b"old")
        await store.create("/registry/pods/system/default/other", b"kept")

    refused = await _migrate("--from", source, "--to", target)
    forced = await _migrate("--from", source, "--to", target, "--force")

    assert refused.returncode == 1
    assert b"not empty" in refused.stderr
    assert forced.returncode == 0, forced.stderr.decode()
    assert b"1 overwritten" in forced.stdout
    async with storage.open_store(target) as store:
        found = {kv.key: kv.value for kv in (await store.list("")).items}
    assert found == {**written, "/registry/pods/system/default/other": b"kept"}


async def test_migrate_refuses_stores_an_api_server_has_open(
    tmp_path: pathlib.Path, etcd_store: str
) -> None:
    source = f"sqlite:///{tmp_path / 'state.db'}"
    target = f"etcd://{etcd_store}"
    await _fill_sqlite(source, 3)

    # As an API server holds them: the etcd store shared, the SQLite file as always.
    async with storage.open_store(target) as held:
        refused_target = await _migrate("--from", source, "--to", target)
        assert (await held.list("")).items == ()
    async with storage.open_store(source):
        refused_source = await _migrate("--from", source, "--to", target)

    assert refused_target.returncode == 1
    assert b"is open in another process" in refused_target.stderr
    assert refused_source.returncode == 1
    assert b"is open in another process" in refused_source.stderr
    # Nothing was copied; with both stores let go, the migration runs.
    done = await _migrate("--from", source, "--to", target)
    assert done.returncode == 0, done.stderr.decode()


async def test_an_api_server_cannot_open_an_etcd_store_during_a_migration(
    etcd_store: str,
) -> None:
    url = f"etcd://{etcd_store}"
    async with storage.open_store(url, storage.Options(exclusive=True)):
        with pytest.raises(storage.StoreInUse, match="exclusively"):
            async with storage.open_store(url):
                pass
    async with storage.open_store(url) as store:
        assert await store.current_revision() > 0


async def test_migrate_copies_etcd_back_to_sqlite(tmp_path: pathlib.Path, etcd_store: str) -> None:
    source = f"etcd://{etcd_store}"
    target = f"sqlite:///{tmp_path / 'back.db'}"
    async with storage.open_store(source) as store:
        for i in range(5):
            await store.create(f"/registry/nodes/n{i}", b"{}")

    done = await _migrate("--from", source, "--to", target)

    assert done.returncode == 0, done.stderr.decode()
    async with storage.open_store(target) as store:
        assert [kv.key for kv in (await store.list("")).items] == [
            f"/registry/nodes/n{i}" for i in range(5)
        ]
