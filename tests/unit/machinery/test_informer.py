"""Object keys, index functions, the indexed store, the informer's handler story, and the
shared informer factory."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import trio
import trio.testing
from hypothesis import strategies as st

from arktos_lite.api import resources
from arktos_lite.machinery import _informer as informer

from ._fakes import NODES, PODS, FakeClient, FakeCluster, Recorder, until

Obj = dict[str, Any]

NAME = st.text("abcxyz0123-", min_size=1, max_size=8)


# Keys


@pytest.mark.parametrize(
    ("meta", "scope", "key"),
    [
        ({"name": "p", "namespace": "ns", "tenant": "t1"}, None, "t1/ns/p"),
        ({"name": "p", "namespace": "ns"}, None, "system/ns/p"),
        ({"name": "ns", "tenant": "t1"}, None, "t1/ns"),
        ({"name": "n1"}, None, "n1"),
        ({"name": "ns"}, resources.Scope.TENANT, "system/ns"),
        ({"name": "p", "namespace": "ns"}, resources.Scope.NAMESPACE, "system/ns/p"),
        ({"name": "t1", "tenant": "ignored"}, resources.Scope.CLUSTER, "t1"),
    ],
)
def test_object_keys_follow_the_scope(
    meta: dict[str, str], scope: resources.Scope | None, key: str
) -> None:
    assert informer.object_key({"metadata": meta}, scope=scope) == key


@hypothesis.given(tenant=NAME, namespace=st.none() | NAME, name=NAME)
def test_split_key_inverts_object_key(tenant: str, namespace: str | None, name: str) -> None:
    meta = {"name": name, "tenant": tenant}
    if namespace is not None:
        meta["namespace"] = namespace
    ref = informer.split_key(informer.object_key({"metadata": meta}))
    assert ref == informer.ObjectRef(tenant=tenant, namespace=namespace, name=name)
    assert informer.split_key(name) == informer.ObjectRef(None, None, name)


def test_split_key_rejects_what_is_no_key() -> None:
    with pytest.raises(ValueError, match="not an object key"):
        informer.split_key("a/b/c/d")


# Index functions


def test_index_functions() -> None:
    pod: Obj = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "tenant": "t1",
            "labels": {"app": "web"},
            "ownerReferences": [{"uid": "o1"}, {"uid": "o2"}, {"name": "no uid"}],
        },
        "spec": {"nodeName": "n1"},
    }
    assert informer.by_namespace(pod) == ("t1/ns",)
    assert informer.by_node_name(pod) == ("n1",)
    assert informer.by_owner_uid(pod) == ("o1", "o2")
    assert informer.by_label("app")(pod) == ("web",)
    assert informer.by_label("tier")(pod) == ()
    bare: Obj = {"metadata": {"name": "n1"}}
    for index in (informer.by_namespace, informer.by_node_name, informer.by_owner_uid):
        assert tuple(index(bare)) == ()
    assert informer.by_namespace({"metadata": {"name": "p", "namespace": "ns"}}) == ("system/ns",)


# The store against a model

INDEXERS: dict[str, informer.IndexFunc] = {
    "namespace": informer.by_namespace,
    "node": informer.by_node_name,
    "owner": informer.by_owner_uid,
    "app": informer.by_label("app"),
}


def _pod(name: str, namespace: str, node: str | None, owners: list[str], app: str | None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "tenant": "t1"}
    if owners:
        meta["ownerReferences"] = [{"uid": uid} for uid in owners]
    if app is not None:
        meta["labels"] = {"app": app}
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}}


PODS_ST = st.builds(
    _pod,
    name=st.sampled_from("abcdef"),
    namespace=st.sampled_from(["ns1", "ns2"]),
    node=st.none() | st.sampled_from(["n1", "n2"]),
    owners=st.lists(st.sampled_from(["o1", "o2", "o3"]), max_size=3),
    app=st.none() | st.sampled_from(["web", "db"]),
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), PODS_ST),
        st.tuples(st.just("remove"), st.sampled_from("abcdef")),
        st.tuples(st.just("index"), st.sampled_from(list(INDEXERS))),
    ),
    max_size=40,
)


def _check_indexes(store: informer.Store, model: dict[str, Obj]) -> None:
    assert sorted(store.keys()) == sorted(model)
    for name, function in store.indexers.items():
        expected: dict[str, set[str]] = {}
        for key, obj in model.items():
            for value in function(obj):
                expected.setdefault(value, set()).add(key)
        assert store.index_values(name) == sorted(expected)
        for value, keys in expected.items():
            assert store.index_keys(name, value) == sorted(keys)
            assert all(
                obj is model[key]
                for key, obj in zip(sorted(keys), store.by_index(name, value), strict=True)
            )
        assert store.by_index(name, "no such value") == []


@hypothesis.given(ops=OPS)
def test_indexes_follow_puts_and_removes(ops: list[tuple[str, Any]]) -> None:
    store = informer.Store({"namespace": informer.by_namespace})
    model: dict[str, Obj] = {}
    for op, arg in ops:
        if op == "put":
            key = informer.object_key(arg)
            assert store.put(key, arg) is model.get(key)
            model[key] = arg
        elif op == "remove":
            key = f"t1/ns1/{arg}"
            assert store.remove(key) is model.pop(key, None)
        else:
            # Adding an index later builds it over what is there already.
            store.add_indexers({arg: INDEXERS[arg]})
        _check_indexes(store, model)


def test_an_index_name_keeps_its_function() -> None:
    store = informer.Store({"node": informer.by_node_name})
    store.add_indexers({"node": informer.by_node_name})
    with pytest.raises(ValueError, match="already exists"):
        store.add_indexers({"node": informer.by_namespace})
    with pytest.raises(KeyError, match="no index named"):
        store.by_index("nothing", "x")


def test_the_store_holds_each_object_once() -> None:
    store = informer.Store(INDEXERS)
    pod = _pod("a", "ns1", "n1", ["o1"], "web")
    store.put("t1/ns1/a", pod)
    assert store.get("t1/ns1/a") is pod
    for name, value in (("namespace", "t1/ns1"), ("node", "n1"), ("owner", "o1")):
        [indexed] = store.by_index(name, value)
        assert indexed is pod


# The informer's story, fed directly as a reflector would


def _versioned(name: str, version: int, *, app: str = "web") -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "tenant": "t1",
            "resourceVersion": str(version),
            "labels": {"app": app},
        }
    }


@hypothesis.given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.sampled_from("abcd"), st.sampled_from(["web", "db"])),
            st.tuples(st.just("delete"), st.sampled_from("abcd"), st.just("")),
            st.tuples(st.just("stale"), st.sampled_from("abcd"), st.just("")),
            st.tuples(st.just("relist"), st.just(""), st.just("")),
        ),
        max_size=50,
    )
)
def test_handlers_and_indexes_stay_right_through_any_sequence(
    steps: list[tuple[str, str, str]],
) -> None:
    """Watch events, stale repeats and re-lists in any order, against a model dict."""
    cluster = FakeCluster()
    target = informer.Informer(cluster.lister_watcher(), indexers={"app": informer.by_label("app")})
    recorder = Recorder()
    recorder.attach(target)
    target.replace([], resource_version="1")
    model: dict[str, Obj] = {}
    version = 1
    last_told: dict[str, Obj] = {}
    for op, name, app in steps:
        key = f"t1/ns/{name}"
        if op == "put":
            version += 1
            obj = _versioned(name, version, app=app)
            model[key] = obj
            target.apply("MODIFIED" if key in last_told else "ADDED", obj)
            last_told[key] = obj
        elif op == "delete" and key in model:
            version += 1
            gone = model.pop(key)
            target.apply("DELETED", {**gone, "metadata": {**gone["metadata"]}})
            last_told.pop(key)
        elif op == "stale" and key in last_told:
            # A repeat of what was already told changes nothing.
            target.apply("MODIFIED", last_told[key])
            target.apply("ADDED", last_told[key])
        elif op == "relist":
            target.replace(list(model.values()), resource_version=str(version))
        assert recorder.violations == []
        assert {k: o["metadata"]["resourceVersion"] for k, o in model.items()} == (recorder.picture)
        assert sorted(target.keys()) == sorted(model)
        for value in ("web", "db"):
            assert target.index_keys("app", value) == sorted(
                k for k, o in model.items() if o["metadata"]["labels"]["app"] == value
            )


def test_deletes_of_unknown_objects_are_not_told() -> None:
    target = informer.Informer(FakeCluster().lister_watcher())
    recorder = Recorder()
    recorder.attach(target)
    target.apply("DELETED", _versioned("never", 5))
    assert recorder.calls == []


def test_an_update_to_an_unknown_object_is_told_as_an_add() -> None:
    target = informer.Informer(FakeCluster().lister_watcher())
    recorder = Recorder()
    recorder.attach(target)
    target.apply("MODIFIED", _versioned("a", 5))
    target.apply("ADDED", _versioned("a", 6))
    assert [verb for verb, _, _ in recorder.calls] == ["add", "update"]


# The factory


async def test_the_factory_shares_one_informer_per_kind_of_list(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pods, nodes = FakeCluster(PODS), FakeCluster(NODES)
    pods.put("p1", node="n1")
    nodes.put("n1")
    fake = FakeClient({PODS: pods, NODES: nodes})
    factory = informer.InformerFactory(fake)  # type: ignore[arg-type]
    pod_informer = factory.informer(PODS, indexers={"node": informer.by_node_name})
    again = factory.informer(PODS, indexers={"namespace": informer.by_namespace})
    assert again is pod_informer
    assert set(pod_informer.indexers) == {"node", "namespace"}
    node_informer = factory.informer(NODES)
    in_t1 = factory.informer(PODS, tenant="t1", namespace="default")
    assert len({id(i) for i in (pod_informer, node_informer, in_t1)}) == 3
    assert not pod_informer.has_synced
    async with trio.open_nursery() as nursery:
        await nursery.start(factory.run)
        assert all(i.has_synced for i in factory.informers)
        assert [o["metadata"]["name"] for o in pod_informer.by_index("node", "n1")] == ["p1"]
        # One asked for later starts at once.
        late = factory.informer(PODS, label_selector="app=x")
        await late.wait_synced()
        pods.put("p2")
        await until(lambda: len(pod_informer) == 2 and len(in_t1) == 2)
        nursery.cancel_scope.cancel()
    asked = sorted(
        (str(c["tenant"]), str(c["namespace"]), str(c["label_selector"]), c["limit"])
        for c in fake.list_calls
    )
    assert asked == [
        ("None", "None", "None", 500),
        ("all", "None", "None", 500),
        ("all", "None", "app=x", 500),
        ("t1", "default", "None", 500),
    ]


async def test_the_factory_starts_in_a_given_nursery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pods = FakeCluster(PODS)
    factory = informer.InformerFactory(FakeClient({PODS: pods}))  # type: ignore[arg-type]
    target = factory.informer(PODS)
    async with trio.open_nursery() as nursery:
        factory.start(nursery)
        factory.start(nursery)  # Starting twice starts nothing twice.
        await factory.wait_for_sync()
        assert target.has_synced
        await until(lambda: pods.open_watches == 1)
        nursery.cancel_scope.cancel()
    assert len(pods.lists) == 1


# Transforms


def test_a_transform_applies_before_caching_and_handlers() -> None:
    target = informer.Informer(
        FakeCluster().lister_watcher(), transform=informer.strip_managed_fields
    )
    told: list[Obj] = []
    target.add_handler(on_add=told.append, on_update=lambda old, new: told.append(new))
    managed = [{"manager": "kubectl", "fieldsV1": {"f:metadata": {}}}]
    listed = _versioned("a", 2)
    listed["metadata"]["managedFields"] = managed
    target.replace([listed], resource_version="2")
    watched = _versioned("a", 3)
    watched["metadata"]["managedFields"] = managed
    target.apply("MODIFIED", watched)
    assert len(told) == 2
    assert all("managedFields" not in obj["metadata"] for obj in told)
    assert "managedFields" not in target.get("t1/ns/a")["metadata"]  # type: ignore[index]


async def test_factory_informers_strip_managed_fields_unless_told_otherwise(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pods = FakeCluster(PODS)
    obj = pods.put("a")
    obj["metadata"]["managedFields"] = [{"manager": "m"}]
    fake = FakeClient({PODS: pods})
    stripping = informer.InformerFactory(fake)  # type: ignore[arg-type]
    keeping = informer.InformerFactory(fake, transform=None)  # type: ignore[arg-type]
    stripped, kept = stripping.informer(PODS), keeping.informer(PODS)
    async with trio.open_nursery() as nursery:
        await nursery.start(stripping.run)
        await nursery.start(keeping.run)
        assert "managedFields" not in stripped.list()[0]["metadata"]
        assert kept.list()[0]["metadata"]["managedFields"] == [{"manager": "m"}]
        nursery.cancel_scope.cancel()


def test_a_handler_added_by_a_handler_is_told_each_object_once() -> None:
    target = informer.Informer(FakeCluster().lister_watcher())
    late = Recorder()

    def add_another(obj: Obj) -> None:
        if obj["metadata"]["name"] == "b":
            late.attach(target)

    target.add_handler(on_add=add_another)
    target.apply("ADDED", _versioned("a", 2))
    target.apply("ADDED", _versioned("b", 3))
    target.apply("ADDED", _versioned("c", 4))
    assert late.violations == []
    assert sorted(late.picture) == ["t1/ns/a", "t1/ns/b", "t1/ns/c"]
