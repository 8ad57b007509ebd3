"""The garbage collector when its caches lag behind the API: it must ask the API before
collecting anything, and before letting an owner go.

The informers are fed by hand and never run, so the cache holds exactly what a test puts
in it; `FakeAPI` holds the truth. Every test runs on an autojump clock (a parameter:
pytest-trio only uses a clock the test function itself receives).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
from collections.abc import AsyncIterator
from typing import Any

import trio
import trio.testing

from arktos_lite import machinery
from arktos_lite.api import (
    errors,
    hash_key as api_hash_key,
    patch as patching,
    resources,
    selectors,
)
from arktos_lite.controllers import _gc as gc

Obj = dict[str, Any]
REGISTRY = resources.Registry()
CONFIGMAPS = REGISTRY.get("", "v1", "configmaps")
DEPLOYMENTS = REGISTRY.get("apps", "v1", "deployments")
assert CONFIGMAPS is not None
assert DEPLOYMENTS is not None

_Key = tuple[str, str | None, str | None, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    verb: str
    name: str
    detail: Any = None


class FakeAPI:
    """The API's objects and the writes made to them; enough of a `client.Client`."""

    def __init__(self) -> None:
        self.objects: dict[_Key, Obj] = {}
        self.calls: list[Call] = []
        self._revision = itertools.count(100)

    def put(self, resource: resources.Resource, obj: Obj) -> Obj:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._revision))
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        self.objects[_key(resource, meta.get("tenant"), meta.get("namespace"), meta["name"])] = obj
        return copy.deepcopy(obj)

    def find(self, resource: resources.Resource, name: str) -> Obj | None:
        return self.objects.get(_key(resource, "t1", "ns", name))

    async def get(
        self,
        resource: resources.Resource,
        name: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        found = self.objects.get(_key(resource, tenant, namespace, name))
        if found is None:
            raise errors.NotFound(f'{resource.plural} "{name}" not found')
        return copy.deepcopy(found)

    async def list(
        self,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        field_selector: str | None = None,
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        matcher = selectors.FieldSelector.parse(field_selector or "")
        items = [
            copy.deepcopy(obj)
            for (plural, t, ns, _name), obj in self.objects.items()
            if plural == resource.plural
            and tenant in (None, resources.ALL_TENANTS, t)
            and namespace in (None, ns)
            and matcher.matches(obj)
        ]
        return {"items": items, "metadata": {"resourceVersion": "1"}}

    async def patch(
        self,
        resource: resources.Resource,
        name: str,
        body: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        current = await self.get(resource, name, namespace=namespace, tenant=tenant)
        wanted = body.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise errors.Conflict("changed")
        self.calls.append(Call("patch", name, body))
        patched = patching.merge_patch(current, body)
        if patched["metadata"].get("deletionTimestamp") and not patched["metadata"].get(
            "finalizers"
        ):
            del self.objects[_key(resource, tenant, namespace, name)]
            return patched
        return self.put(resource, patched)

    async def delete(
        self,
        resource: resources.Resource,
        name: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> Obj:
        current = await self.get(resource, name, namespace=namespace, tenant=tenant)
        for field, value in (preconditions or {}).items():
            if current["metadata"].get(field) != value:
                raise errors.Conflict(f"precondition {field} failed")
        self.calls.append(Call("delete", name, (propagation_policy, dict(preconditions or {}))))
        del self.objects[_key(resource, tenant, namespace, name)]
        return current


def _key(
    resource: resources.Resource, tenant: str | None, namespace: str | None, name: str
) -> _Key:
    if resource.scope is resources.Scope.CLUSTER:
        tenant = None
    return (resource.plural, tenant, namespace if resource.namespaced else None, name)


def obj(name: str, *, owners: tuple[Obj, ...] = (), **meta: Any) -> Obj:
    refs = [
        {
            "apiVersion": o["apiVersion"],
            "kind": o["kind"],
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
            "blockOwnerDeletion": True,
        }
        for o in owners
    ]
    body: Obj = {
        "metadata": {"name": name, "namespace": "ns", "tenant": "t1", "uid": f"uid-{name}", **meta}
    }
    if refs:
        body["metadata"]["ownerReferences"] = refs
        for ref in refs:
            ref["hashKey"] = api_hash_key(ref["uid"])
    return body


@dataclasses.dataclass
class Harness:
    api: FakeAPI
    collector: gc.GarbageCollector
    informers: machinery.InformerFactory

    def cache(self, resource: resources.Resource, *objects: Obj) -> None:
        """Let the collector's cache of `resource` hold exactly `objects`."""
        informer = self.informers.informer(resource)
        informer.replace([copy.deepcopy(o) for o in objects], resource_version="1")


@contextlib.asynccontextmanager
async def harness() -> AsyncIterator[Harness]:
    api = FakeAPI()
    informers = machinery.InformerFactory(api)  # type: ignore[arg-type]
    recorder = machinery.EventRecorder(api, component="test")  # type: ignore[arg-type]
    collector = gc.GarbageCollector(api, informers, recorder=recorder)  # type: ignore[arg-type]
    for resource in gc.watched():
        informers.informer(resource).replace([], resource_version="1")
    async with trio.open_nursery() as nursery:
        await nursery.start(collector.run)
        yield Harness(api, collector, informers)
        nursery.cancel_scope.cancel()


async def test_a_dependent_whose_owner_the_cache_has_not_seen_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        owner = h.api.put(DEPLOYMENTS, obj("owner", uid="uid-owner"))
        dependent = h.api.put(CONFIGMAPS, obj("dependent", owners=(owner,)))
        # The dependent's informer is ahead of the owner's.
        h.cache(CONFIGMAPS, dependent)
        await trio.sleep(5)
        assert h.api.find(CONFIGMAPS, "dependent") is not None
        assert h.api.calls == []


async def test_a_dependent_whose_owner_is_gone_is_deleted_with_preconditions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        ghost = obj("ghost")
        ghost.update(apiVersion="apps/v1", kind="Deployment")
        dependent = h.api.put(CONFIGMAPS, obj("dependent", owners=(ghost,)))
        h.cache(CONFIGMAPS, dependent)
        await trio.sleep(1)
        assert h.api.calls == [
            Call(
                "delete",
                "dependent",
                (
                    "Background",
                    {
                        "uid": "uid-dependent",
                        "resourceVersion": dependent["metadata"]["resourceVersion"],
                    },
                ),
            )
        ]


async def test_a_dependent_that_gained_a_live_owner_since_it_was_cached_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        ghost = obj("ghost")
        ghost.update(apiVersion="apps/v1", kind="Deployment")
        stale = h.api.put(CONFIGMAPS, obj("dependent", owners=(ghost,)))
        owner = h.api.put(DEPLOYMENTS, obj("owner"))
        # The API already has the new owner reference; the cache has the old one.
        h.api.put(CONFIGMAPS, obj("dependent", owners=(ghost, owner)))
        h.cache(CONFIGMAPS, stale)
        await trio.sleep(1)
        kept = h.api.find(CONFIGMAPS, "dependent")
        assert kept is not None
        assert [r["uid"] for r in kept["metadata"]["ownerReferences"]] == ["uid-owner"]
        assert [c.verb for c in h.api.calls] == ["patch"]


async def test_orphaning_reaches_dependents_the_cache_has_not_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        owner = h.api.put(
            DEPLOYMENTS,
            obj("owner", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=[gc.ORPHAN]),
        )
        h.api.put(CONFIGMAPS, obj("unseen", owners=(owner,)))
        h.cache(DEPLOYMENTS, owner)
        await trio.sleep(1)
        unseen = h.api.find(CONFIGMAPS, "unseen")
        assert unseen is not None
        assert not unseen["metadata"].get("ownerReferences")
        assert h.api.find(DEPLOYMENTS, "owner") is None
        assert [(c.verb, c.name) for c in h.api.calls] == [("patch", "unseen"), ("patch", "owner")]


async def test_foreground_waits_for_blocking_dependents_the_cache_has_not_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        owner = h.api.put(
            DEPLOYMENTS,
            obj("owner", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=[gc.FOREGROUND]),
        )
        unseen = h.api.put(CONFIGMAPS, obj("unseen", owners=(owner,)))
        h.cache(DEPLOYMENTS, owner)
        await trio.sleep(5)
        assert h.api.find(DEPLOYMENTS, "owner") is not None
        assert h.api.calls == []
        # The dependent reaches the cache: it is deleted, and then the owner may go.
        h.cache(CONFIGMAPS, unseen)
        await trio.sleep(1)
        assert h.api.find(CONFIGMAPS, "unseen") is None
        h.cache(CONFIGMAPS)
        await trio.sleep(2)
        assert h.api.find(DEPLOYMENTS, "owner") is None
