"""The action controller keeps a complete Action for the retention period counted from when
it completed (`status.completionTime`), not from when it was made; an action completed
without one counts from its creation.

The informers are fed by hand and never run; `FakeAPI` holds the truth. The controller's
wall clock moves with trio's, so an autojump clock drives hours of retention at once.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
from collections.abc import AsyncIterator
from typing import Any

import trio
import trio.testing

from arktos_lite import machinery
from arktos_lite.api import errors, patch as patching, timestamps
from arktos_lite.controllers import _actions as actions

Obj = dict[str, Any]

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
RETENTION = 3600.0


def wall_clock() -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=trio.current_time())


def stamp(seconds_from_now: float) -> str:
    return timestamps.rfc3339(wall_clock() + datetime.timedelta(seconds=seconds_from_now))


class FakeAPI:
    """Actions and pods by name, and the deletes made; enough of a `client.Client`."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.deleted: list[str] = []
        self.revision = 100

    def put(self, plural: str, obj: Obj) -> None:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[plural, obj["metadata"]["name"]] = obj

    async def get(self, resource: Any, name: str, **_where: Any) -> Obj:
        await trio.lowlevel.checkpoint()
        found = self.objects.get((resource.plural, name))
        if found is None:
            raise errors.NotFound(f'{resource.plural} "{name}" not found')
        return copy.deepcopy(found)

    async def patch(self, resource: Any, name: str, body: Obj, **_where: Any) -> Obj:
        current = await self.get(resource, name)
        wanted = body.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise errors.Conflict("changed")
        patched = patching.merge_patch(current, body)
        self.put(resource.plural, patched)
        return copy.deepcopy(patched)

    async def delete(
        self, resource: Any, name: str, *, preconditions: dict[str, Any] | None = None, **_: Any
    ) -> Obj:
        current = await self.get(resource, name)
        for field, value in (preconditions or {}).items():
            if current["metadata"].get(field) != value:
                raise errors.Conflict(f"precondition {field} failed")
        self.deleted.append(name)
        del self.objects[resource.plural, name]
        return current


def action(name: str, *, created: str, status: Obj | None = None) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Action",
        "metadata": {
            "name": name,
            "namespace": "default",
            "tenant": "system",
            "uid": f"uid-{name}",
            "creationTimestamp": created,
        },
        "spec": {"nodeName": "n1", "podName": "vm", "rebootAction": {"delayInSeconds": 0}},
    }
    if status is not None:
        body["status"] = status
    return body


@dataclasses.dataclass
class Harness:
    api: FakeAPI
    informers: machinery.InformerFactory

    def show(self, *objects: Obj) -> None:
        """Let the API hold `objects` and the controller's cache see exactly them."""
        for obj in objects:
            self.api.put("actions", obj)
        self.informers.informer(actions.ACTIONS).replace(
            [copy.deepcopy(o) for o in objects], resource_version=str(self.api.revision)
        )

    def exists(self, name: str) -> bool:
        return ("actions", name) in self.api.objects


@contextlib.asynccontextmanager
async def harness() -> AsyncIterator[Harness]:
    api = FakeAPI()
    informers = machinery.InformerFactory(api)  # type: ignore[arg-type]
    controller = actions.ActionController(
        api,  # type: ignore[arg-type]
        informers,
        retention=RETENTION,
        wall_clock=wall_clock,
    )
    informers.informer(actions.PODS).replace([], resource_version="1")
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield Harness(api, informers)
        nursery.cancel_scope.cancel()


async def test_retention_counts_from_completion_not_creation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        # Made two hours ago, waited for its VM, and completed just now.
        h.show(
            action(
                "late",
                created=stamp(-7200),
                status={"complete": True, "completionTime": stamp(0), "error": ""},
            )
        )
        await trio.sleep(RETENTION - 60)
        assert h.exists("late")
        await trio.sleep(120)
        assert not h.exists("late")
        assert h.api.deleted == ["late"]


async def test_an_action_completed_long_ago_goes_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        h.show(
            action(
                "old",
                created=stamp(-7300),
                status={"complete": True, "completionTime": stamp(-7200)},
            )
        )
        await trio.sleep(1)
        assert not h.exists("old")


async def test_without_a_completion_time_retention_counts_from_creation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        h.show(
            action("legacy", created=stamp(-3000), status={"complete": True}),
            action("unreadable", created=stamp(-3000), status={"complete": True,
                                                                "completionTime": "soon"}),
        )  # fmt: skip
        await trio.sleep(540)
        assert h.exists("legacy")
        assert h.exists("unreadable")
        await trio.sleep(120)
        assert not h.exists("legacy")
        assert not h.exists("unreadable")


async def test_an_incomplete_action_stays(autojump_clock: trio.testing.MockClock) -> None:
    async with harness() as h:
        h.api.put("pods", {"metadata": {"name": "vm", "uid": "pod-uid"}})
        h.informers.informer(actions.PODS).replace(
            [{"metadata": {"name": "vm", "namespace": "default", "tenant": "system",
                           "uid": "pod-uid"}}],
            resource_version="1",
        )  # fmt: skip
        h.show(action("pending", created=stamp(-7200), status={"complete": False}))
        await trio.sleep(2 * RETENTION)
        assert h.exists("pending")


async def test_an_action_whose_pod_is_gone_is_stamped_when_it_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        h.show(action("orphan", created=stamp(-7200)))
        await trio.sleep(1)
        failed = h.api.objects["actions", "orphan"]["status"]
        assert failed["complete"] is True
        assert failed["error"] == "pod vm no longer exists"
        failed_at = timestamps.parse(failed["completionTime"])
        assert failed_at is not None
        assert abs((failed_at - wall_clock()).total_seconds()) <= 2
        # Kept for the whole retention period after failing, however old it was.
        h.informers.informer(actions.ACTIONS).replace(
            [copy.deepcopy(h.api.objects["actions", "orphan"])],
            resource_version=str(h.api.revision),
        )
        await trio.sleep(RETENTION - 60)
        assert h.exists("orphan")
        await trio.sleep(120)
        assert not h.exists("orphan")
