"""What the tenant and namespace controllers share: working a queue of keys against an API
server that may be away, and letting an emptied object go through its `finalize`
subresource.

Guarantees: a key whose sync finds the API server unreachable is handled again after
`UNREACHABLE_RETRY` seconds, with a DEBUG line rather than the error of a failed key; the
queue is shut down however the workers end; a stale cached copy given to `finalize` is
never written, its key is handled again instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources

# How long a key waits after the API server could not be reached.
UNREACHABLE_RETRY = 1.0


async def work(
    queue: machinery.WorkQueue[str],
    sync: Callable[[str], Awaitable[None]],
    *,
    workers: int,
    what: str,
    logger: logging.Logger,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `workers` tasks that `sync` the keys of `queue` until cancelled.

    `what` names the objects (`"tenant"`) in the lines the controller's `logger` writes.
    """

    async def sync_or_wait(key: str) -> None:
        try:
            await sync(key)
        except client.Unreachable as exc:
            logger.debug("%s %s: API server unreachable (%s); retrying", what, key, exc)
            raise machinery.Requeue(UNREACHABLE_RETRY) from None

    logger.info("%s controller starting with %d workers", what, workers)
    try:
        await machinery.run_workers(queue, sync_or_wait, workers=workers, task_status=task_status)
    finally:
        queue.shutdown()
        logger.info("%s controller stopped", what)


async def finalize(
    api: client.Client,
    resource: resources.Resource,
    finalized: dict[str, Any],
    *,
    tenant: str | None = None,
) -> bool:
    """Write `finalized` (the object without this controller's finalizer) through the
    `finalize` subresource; False if the object is gone already.

    Raises `machinery.Requeue` on a conflict: the cached copy is stale, and its newer
    version comes with a fresh key.
    """
    try:
        await api.replace(resource, finalized, tenant=tenant, subresource="finalize")
    except errors.NotFound:
        return False
    except errors.Conflict:
        raise machinery.Requeue() from None
    return True
