"""The endpoints controller when its caches lag behind the API: a slice it wrote and does
not see yet is never written a second time.

The informers are fed by hand and never run, so the caches hold exactly what a test puts
in them; `FakeAPI` holds the truth. Every test runs on an autojump clock.
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
from arktos_lite.api import errors, resources
from arktos_lite.controllers import _endpoints as ep

Obj = dict[str, Any]
_Key = tuple[str, str, str, str]


class FakeAPI:
    """Objects by resource, tenant, namespace and name, and the writes made to them."""

    def __init__(self) -> None:
        self.objects: dict[_Key, Obj] = {}
        self.writes: list[tuple[str, str, str]] = []
        self._revision = itertools.count(100)
        self._suffix = itertools.count(1)

    def _key(
        self, resource: resources.Resource, tenant: str | None, ns: str | None, name: str
    ) -> _Key:
        return (resource.plural, tenant or "system", ns or "", name)

    async def create(
        self,
        resource: resources.Resource,
        body: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = f"{meta.pop('generateName')}{next(self._suffix):05}"
        key = self._key(resource, tenant, namespace, meta["name"])
        if key in self.objects:
            raise errors.AlreadyExists.for_resource(resource.plural, meta["name"])
        meta.update(
            namespace=namespace,
            tenant=tenant,
            uid=f"uid-{meta['name']}",
            resourceVersion=str(next(self._revision)),
        )
        self.objects[key] = obj
        if resource.plural != "events":
            self.writes.append(("create", resource.plural, meta["name"]))
        return copy.deepcopy(obj)

    async def replace(
        self, resource: resources.Resource, body: Obj, *, tenant: str | None = None
    ) -> Obj:
        await trio.lowlevel.checkpoint()
        meta = body["metadata"]
        key = self._key(resource, tenant, meta.get("namespace"), meta["name"])
        current = self.objects.get(key)
        if current is None:
            raise errors.NotFound.for_resource(resource.plural, meta["name"])
        if current["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.Conflict("the object has been modified")
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(next(self._revision))
        self.objects[key] = obj
        self.writes.append(("replace", resource.plural, meta["name"]))
        return copy.deepcopy(obj)

    async def delete(self, resource: resources.Resource, name: str, **where: Any) -> Obj:
        await trio.lowlevel.checkpoint()
        key = self._key(resource, where.get("tenant"), where.get("namespace"), name)
        gone = self.objects.pop(key, None)
        if gone is None:
            raise errors.NotFound.for_resource(resource.plural, name)
        self.writes.append(("delete", resource.plural, name))
        return gone

    def stored(self, resource: resources.Resource) -> list[Obj]:
        return [copy.deepcopy(o) for k, o in self.objects.items() if k[0] == resource.plural]


SERVICE: Obj = {
    "metadata": {
        "name": "web",
        "namespace": "default",
        "tenant": "t1",
        "uid": "uid-web",
        "resourceVersion": "1",
    },
    "spec": {
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "ipFamilies": ["IPv4"],
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
    },
}


def pod(name: str, ip: str, *, ready: bool = True, version: str = "2") -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "tenant": "t1",
            "uid": f"uid-{name}",
            "labels": {"app": "web"},
            "resourceVersion": version,
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@dataclasses.dataclass
class Harness:
    api: FakeAPI
    informers: machinery.InformerFactory

    def informer(self, resource: resources.Resource) -> machinery.Informer:
        return self.informers.informer(resource)

    def catch_up(self, resource: resources.Resource) -> None:
        """Let the cache of `resource` hold what the API holds."""
        self.informer(resource).replace(self.api.stored(resource), resource_version="1")

    def slice_writes(self) -> list[tuple[str, str]]:
        return [
            (verb, name) for verb, plural, name in self.api.writes if plural == "endpointslices"
        ]


@contextlib.asynccontextmanager
async def harness(*pods: Obj) -> AsyncIterator[Harness]:
    api = FakeAPI()
    informers = machinery.InformerFactory(api)  # type: ignore[arg-type]
    recorder = machinery.EventRecorder(api, component="test")  # type: ignore[arg-type]
    controller = ep.EndpointsController(api, informers, recorder=recorder)  # type: ignore[arg-type]
    informers.informer(ep.SERVICES).replace([copy.deepcopy(SERVICE)], resource_version="1")
    informers.informer(ep.PODS).replace([copy.deepcopy(p) for p in pods], resource_version="1")
    informers.informer(ep.ENDPOINTS).replace([], resource_version="1")
    informers.informer(ep.ENDPOINT_SLICES).replace([], resource_version="1")
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield Harness(api, informers)
        nursery.cancel_scope.cancel()


async def test_a_slice_the_cache_has_not_seen_is_not_created_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness(pod("a", "10.244.0.5")) as h:
        await trio.sleep(1)
        [(verb, name)] = h.slice_writes()
        assert verb == "create"
        # A pod changes while the slice cache still lacks the slice just created.
        h.informer(ep.PODS).apply("MODIFIED", pod("a", "10.244.0.5", ready=False, version="3"))
        await trio.sleep(5)
        assert h.slice_writes() == [("create", name)]
        # The cache catches up: now the slice is brought up to date, in place.
        h.catch_up(ep.ENDPOINT_SLICES)
        h.catch_up(ep.ENDPOINTS)
        await trio.sleep(1)
        assert h.slice_writes() == [("create", name), ("replace", name)]
        [stored] = h.api.stored(ep.ENDPOINT_SLICES)
        assert stored["endpoints"][0]["conditions"]["ready"] is False


async def test_an_unseen_write_is_given_up_on_after_a_while(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness(pod("a", "10.244.0.5")) as h:
        await trio.sleep(1)
        h.informer(ep.PODS).apply("MODIFIED", pod("a", "10.244.0.5", ready=False, version="3"))
        # The slice never shows in the cache: after the write's time to live the
        # controller trusts its cache again rather than wait forever.
        await trio.sleep(ep.WRITE_TTL + 5)
        assert [verb for verb, _name in h.slice_writes()][:2] == ["create", "create"]
