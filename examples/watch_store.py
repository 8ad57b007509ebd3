"""Watch a prefix of an arktos-lite store while another task writes to it.

Run: python examples/watch_store.py [STORE_URL]   (default: an in-memory store)
"""

from __future__ import annotations

import sys

import trio

from arktos_lite import storage


async def main(url: str) -> None:
    async with storage.open_store(url) as store, trio.open_nursery() as nursery:
        start = await store.current_revision() + 1

        async def write() -> None:
            for i in range(3):
                kv = await store.create(f"/registry/configmaps/system/default/demo-{i}", b"{}")
                await store.delete(kv.key, expected_revision=kv.mod_revision)

        nursery.start_soon(write)
        async with store.watch("/registry/configmaps/", from_revision=start) as events:
            seen = 0
            async for event in events:
                print(f"{event.revision:>6} {event.type:<6} {event.kv.key}")
                seen += 1
                if seen == 6:
                    break


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "sqlite://")
