"""`arktos store migrate`: a one-way copy of every current object from one store to another.

What it guarantees:

* Both stores are opened exclusively (`storage.Options(exclusive=True)`): a SQLite file an
  API server has open, or an etcd store an API server (or another migration) holds,
  makes it fail with `storage.StoreInUse` before anything is read or written; and while
  it runs, no API server can open either store.
* The source is read from one snapshot (one revision, page by page). Only the current
  value of each key is copied, not history; the target gives every copied key a new
  revision of its own, so clients re-list after the switch, as after an etcd restore.
  Lease attachments are not copied (the API server attaches none).
* A target that holds any key is refused (`TargetNotEmpty`) unless `force`: then a key
  present on both sides takes the source's value and other target keys stay.
* Neither store is compacted while the copy runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import trio

from arktos_lite import storage

logger = logging.getLogger(__name__)

# Keys read per page, and copied concurrently.
_PAGE = 200
_OPTIONS = storage.Options(auto_compact=False, exclusive=True)


class TargetNotEmpty(Exception):
    """The target store holds keys and the migration was not forced."""

    def __init__(self, url: str, *, keys: int) -> None:
        super().__init__(
            f"the target store {url} is not empty ({keys}+ keys); pass --force to copy "
            "over it (keys on both sides take the source's value)"
        )
        self.url = url


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """What a migration did: keys copied, of which overwritten, at the source's revision."""

    copied: int
    overwritten: int
    source_revision: int


async def migrate(source_url: str, target_url: str, *, force: bool = False) -> Result:
    """Copy every current key-value of `source_url` into `target_url`; see the module.

    Raises `storage.StoreInUse`, `TargetNotEmpty`, other `storage.StorageError`s and
    `ValueError` (a bad URL) as themselves, not wrapped in exception groups.
    """
    try:
        return await _migrate(source_url, target_url, force=force)
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


async def _migrate(source_url: str, target_url: str, *, force: bool) -> Result:
    if source_url == target_url:
        raise ValueError("the source and the target are the same store")
    async with (
        storage.open_store(source_url, _OPTIONS) as source,
        storage.open_store(target_url, _OPTIONS) as target,
    ):
        existing = await target.list("", limit=1)
        if existing.items and not force:
            raise TargetNotEmpty(target_url, keys=len(existing.items))
        overwritten = 0

        async def copy(kv: storage.KeyValue) -> None:
            nonlocal overwritten
            try:
                await target.create(kv.key, kv.value)
            except storage.KeyExists:
                if not force:
                    raise
                await target.update(kv.key, kv.value)
                overwritten += 1

        copied = 0
        page = await source.list("", limit=_PAGE)
        revision = page.revision
        while True:
            # A page's keys are copied concurrently (each write is one round trip to etcd).
            async with trio.open_nursery() as nursery:
                for kv in page.items:
                    nursery.start_soon(copy, kv)
            copied += len(page.items)
            if page.continue_key is None:
                break
            page = await source.list(
                "", revision=revision, limit=_PAGE, continue_key=page.continue_key
            )
        logger.info(
            "copied %d keys from %s (revision %d) to %s", copied, source_url, revision, target_url
        )
        return Result(copied=copied, overwritten=overwritten, source_revision=revision)
