"""Acknowledged writes survive a SIGKILL of etcd under write load (etcd store).

Writer tasks create keys and compare-and-swap them forward through the etcd backend,
recording every write the store acknowledged. etcd is killed with SIGKILL once enough
writes were acknowledged, then started again on the same data directory and ports: every
acknowledged write is there (or, for the one write each task had in flight, the next
one), revisions went on from where they were, and the same store object carries on.
"""

from __future__ import annotations

import dataclasses
import functools
import random

import pytest
import trio

from arktos_lite import storage

from . import _crash_writer

WRITER_TASKS = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    key: str
    counter: int
    revision: int


async def _write_until_failure(
    store: storage.Backend, *, task: int, seed: int, acks: list[Ack], enough: _Enough
) -> None:
    rng = random.Random(seed * 1000 + task)
    keys: list[str] = []
    state: dict[str, tuple[int, int]] = {}
    while True:
        try:
            if not keys or rng.random() < 0.25:
                key = _crash_writer.key_of(task, len(keys))
                counter = 0
                kv = await store.create(key, _crash_writer.encode(key, counter))
                keys.append(key)
            else:
                key = rng.choice(keys)
                counter, revision = state[key]
                counter += 1
                kv = await store.update(
                    key, _crash_writer.encode(key, counter), expected_revision=revision
                )
        except storage.StorageError:
            return  # etcd is gone: this write is not acknowledged.
        state[key] = (counter, kv.mod_revision)
        acks.append(Ack(key, counter, kv.mod_revision))
        if len(acks) >= enough.count:
            enough.reached.set()


@dataclasses.dataclass(frozen=True, slots=True)
class _Enough:
    """Set `reached` once `count` writes were acknowledged."""

    count: int
    reached: trio.Event = dataclasses.field(default_factory=trio.Event)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 8])
async def test_acknowledged_writes_survive_sigkill_of_etcd(
    etcd_server: storage.LocalEtcd, seed: int
) -> None:
    kill_after = random.Random(seed).randint(300, 1500)
    url = f"{etcd_server.url}/crash-{seed}"
    acks: list[Ack] = []
    enough = _Enough(kill_after)

    async with storage.open_store(url) as store:
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for task in range(WRITER_TASKS):
                    nursery.start_soon(
                        functools.partial(
                            _write_until_failure,
                            store,
                            task=task,
                            seed=seed,
                            acks=acks,
                            enough=enough,
                        )
                    )
                await enough.reached.wait()
                etcd_server.kill()
        killed_at = len(acks)
        await trio.to_thread.run_sync(etcd_server.start)

        assert killed_at >= kill_after
        revisions = [ack.revision for ack in acks]
        assert len(set(revisions)) == len(revisions), "two acknowledged writes share a revision"
        last: dict[str, Ack] = {}
        for ack in acks:
            previous = last.get(ack.key)
            if previous is not None:
                assert ack.counter == previous.counter + 1
                assert ack.revision > previous.revision
            last[ack.key] = ack

        # The same store object reaches the restarted etcd.
        page = await store.list(_crash_writer.PREFIX)
        found = {kv.key: kv for kv in page.items}
        unacknowledged: dict[int, list[str]] = {}
        for key, ack in last.items():
            kv = found.get(key)
            assert kv is not None, f"acknowledged {ack} but the key is gone"
            counter = _crash_writer.decode(key, kv.value)
            if counter == ack.counter:
                assert kv.mod_revision == ack.revision, f"acknowledged {ack}, store has {kv}"
            else:
                assert counter == ack.counter + 1, f"acknowledged {ack}, store has {counter}"
                unacknowledged.setdefault(_crash_writer.task_of(key), []).append(key)
        for key in found.keys() - last.keys():
            assert _crash_writer.decode(key, found[key].value) == 0, f"never created {key}"
            unacknowledged.setdefault(_crash_writer.task_of(key), []).append(key)
        assert all(len(keys) == 1 for keys in unacknowledged.values()), unacknowledged

        current = await store.current_revision()
        assert current >= max(revisions)
        for ack in random.Random(seed).sample(acks, 50):
            kv = await store.get(ack.key, revision=ack.revision)
            assert kv.value == _crash_writer.encode(ack.key, ack.counter), ack

        created = await store.create("/after-restart", b"new")
        assert created.mod_revision > current

    # And a store opened afresh sees the same.
    async with storage.open_store(url) as store:
        assert (await store.list(_crash_writer.PREFIX)).items == page.items
