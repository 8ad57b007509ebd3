"""The process `test_store_crash` kills: it writes to a store and reports acknowledged writes.

Usage: `python _crash_writer.py URL TASKS SEED [compacting]`. TASKS concurrent trio tasks
create keys and compare-and-swap them forward; each task owns its keys, so it has at most
one write in flight and a key's counter only ever grows by one. One line
`key counter revision` goes to stdout, flushed, only after the store acknowledged the
write. The process never stops on its own: the test ends it with SIGKILL. With
`compacting`, history is compacted every few milliseconds, so that the kill may land in the
middle of a compaction.
"""

from __future__ import annotations

import functools
import random
import sys

import trio

from arktos_lite import storage

PREFIX = "/crash/"
COMPACTING = storage.Options(history_seconds=0, history_revisions=100, compact_interval=0.02)
# About 300 bytes per value, like a small Kubernetes object.
_PADDING = b"." * 280


def key_of(task: int, number: int) -> str:
    return f"{PREFIX}w{task:02d}/k{number:05d}"


def task_of(key: str) -> int:
    """The writer task that owns `key`."""
    return int(key.removeprefix(PREFIX).split("/")[0].removeprefix("w"))


def encode(key: str, counter: int) -> bytes:
    return f"{key}={counter};".encode() + _PADDING


def decode(key: str, value: bytes) -> int:
    """The counter stored in `value`; raise ValueError if the value is not `key`'s."""
    head, sep, _ = value.partition(b";")
    name, eq, counter = head.decode().rpartition("=")
    if not sep or not eq or name != key:
        raise ValueError(f"value {value[:60]!r} is not a value of {key!r}")
    return int(counter)


async def _write_forever(store: storage.Backend, *, task: int, seed: int) -> None:
    rng = random.Random(seed * 1000 + task)
    keys: list[str] = []
    state: dict[str, tuple[int, int]] = {}  # key -> (counter, mod revision)
    while True:
        if not keys or rng.random() < 0.25:
            key = key_of(task, len(keys))
            counter = 0
            kv = await store.create(key, encode(key, counter))
            keys.append(key)
        else:
            key = rng.choice(keys)
            counter, revision = state[key]
            counter += 1
            kv = await store.update(key, encode(key, counter), expected_revision=revision)
        state[key] = (counter, kv.mod_revision)
        sys.stdout.write(f"{key} {counter} {kv.mod_revision}\n")
        sys.stdout.flush()


async def main(url: str, *, tasks: int, seed: int, options: storage.Options) -> None:
    async with storage.open_store(url, options) as store, trio.open_nursery() as nursery:
        for task in range(tasks):
            nursery.start_soon(functools.partial(_write_forever, store, task=task, seed=seed))


if __name__ == "__main__":
    url, tasks, seed, *flags = sys.argv[1:]
    options = COMPACTING if flags == ["compacting"] else storage.Options()
    trio.run(functools.partial(main, url, tasks=int(tasks), seed=int(seed), options=options))
