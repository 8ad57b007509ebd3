"""Reflector and informer against a fake API: lists, watches, 410s, dropped connections,
bookmarks and selector changes, judged by what handlers are told.

The tests run on an autojump clock, so backoff and watch timeouts take no real time.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from arktos_lite import client
from arktos_lite.api import errors
from arktos_lite.machinery import _informer as informer, _reflector as reflector

from ._fakes import PODS, FakeCluster, Fault, Recorder, until, versions


@contextlib.asynccontextmanager
async def running(
    cluster: FakeCluster,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    indexers: dict[str, informer.IndexFunc] | None = None,
) -> AsyncIterator[tuple[informer.Informer, Recorder]]:
    """A started (synced) informer over `cluster`, with a `Recorder` attached first."""
    lw = cluster.lister_watcher(label_selector=label_selector, field_selector=field_selector)
    target = informer.Informer(lw, indexers=indexers)
    recorder = Recorder()
    recorder.attach(target)
    async with trio.open_nursery() as nursery:
        await nursery.start(target.run)
        yield target, recorder
        nursery.cancel_scope.cancel()
    assert recorder.violations == []


def consistent(cluster: FakeCluster, target: informer.Informer, recorder: Recorder) -> bool:
    """The handlers' picture, the cache and the cluster all agree."""
    assert recorder.violations == []
    cached = {
        key: obj["metadata"]["resourceVersion"]
        for key, obj in zip(target.keys(), target.list(), strict=True)
    }
    return recorder.picture == versions(cluster) == cached


async def test_first_list_is_paged_and_started_reports_sync(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    for i in range(1203):
        cluster.put(f"p{i:04}")
    async with running(cluster) as (target, recorder):
        assert target.has_synced
        assert len(target) == 1203
        assert consistent(cluster, target, recorder)
    assert [(c.limit, c.continue_ is not None) for c in cluster.lists] == [
        (500, False),
        (500, True),
        (500, True),
    ]
    # List items left out their kind; the cache fills it in, as watch events carry it.
    assert {obj["kind"] for obj in target.list()} == {"Pod"}
    # The watch starts at the list's version.
    assert cluster.watches[0].resource_version == str(cluster.revision)


async def test_an_expired_continue_token_falls_back_to_a_whole_list(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    for i in range(700):
        cluster.put(f"p{i:04}")
    original_list = cluster.list

    async def list_then_expire(**options: object) -> dict[str, object]:
        page = await original_list(**options)  # type: ignore[arg-type]
        cluster.expire_pages()
        return page

    cluster.list = list_then_expire  # type: ignore[method-assign]
    async with running(cluster) as (target, recorder):
        assert len(target) == 700
        assert consistent(cluster, target, recorder)
    assert [c.limit for c in cluster.lists] == [500, 500, None]


async def test_watch_events_reach_handlers_in_order(autojump_clock: trio.testing.MockClock) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    async with running(cluster) as (target, recorder):
        cluster.put("b")
        cluster.put("a", labels={"v": "2"})
        cluster.delete("t1/default/b")
        await until(lambda: len(recorder.calls) == 4)
        assert [(verb, key) for verb, key, _ in recorder.calls] == [
            ("add", "t1/default/a"),
            ("add", "t1/default/b"),
            ("update", "t1/default/a"),
            ("delete", "t1/default/b"),
        ]
        assert consistent(cluster, target, recorder)
        assert target.resource_version == str(cluster.revision)


async def test_delete_hands_over_the_last_state(autojump_clock: trio.testing.MockClock) -> None:
    cluster = FakeCluster()
    cluster.put("a", labels={"last": "yes"})
    deleted: list[dict[str, object]] = []
    async with running(cluster) as (target, _):
        target.add_handler(on_delete=deleted.append)
        cluster.delete("t1/default/a")
        await until(lambda: bool(deleted))
    [obj] = deleted
    assert obj["metadata"]["labels"] == {"last": "yes"}  # type: ignore[index]


async def test_relist_after_410_delivers_only_the_differences(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    for name in "abcdef":
        cluster.put(name)
    async with running(cluster) as (target, recorder):
        lists_before = len(cluster.lists)
        told_before = len(recorder.calls)
        # The connection drops and stays down while the world moves on and is compacted.
        cluster.hold_watches()
        cluster.drop_watches(client.Unreachable("connection reset"))
        await until(lambda: cluster.open_watches == 0)
        cluster.put("b", labels={"changed": "1"})
        cluster.delete("t1/default/c")
        cluster.put("g")
        cluster.put("g", labels={"twice": "1"})
        cluster.put("h")
        cluster.delete("t1/default/h")
        cluster.compact()
        cluster.release_watches()
        await until(lambda: len(cluster.lists) > lists_before and cluster.open_watches == 1)
        await until(lambda: consistent(cluster, target, recorder))
        told = sorted((verb, key) for verb, key, _ in recorder.calls[told_before:])
        # Unchanged a, d, e, f: nothing. h came and went unseen: nothing.
        assert told == [
            ("add", "t1/default/g"),
            ("delete", "t1/default/c"),
            ("update", "t1/default/b"),
        ]
        assert cluster.watches[-1].resource_version == str(cluster.revision)


async def test_a_delete_seen_only_by_relisting_carries_the_last_cached_object(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a", labels={"cached": "yes"})
    deleted: list[dict[str, object]] = []
    async with running(cluster) as (target, _):
        target.add_handler(on_delete=deleted.append)
        cluster.hold_watches()
        cluster.drop_watches(client.Unreachable("gone away"))
        cluster.delete("t1/default/a")
        cluster.compact()
        cluster.release_watches()
        await until(lambda: bool(deleted))
    [obj] = deleted
    assert obj["metadata"]["labels"] == {"cached": "yes"}  # type: ignore[index]


async def test_a_410_while_watching_lists_again(autojump_clock: trio.testing.MockClock) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    async with running(cluster) as (target, recorder):
        cluster.put("b")
        cluster.drop_watches(errors.Gone("too old resource version: 1 (5)"))
        await until(lambda: len(cluster.lists) == 2 and cluster.open_watches == 1)
        cluster.put("c")
        await until(lambda: consistent(cluster, target, recorder))
        assert [verb for verb, _, _ in recorder.calls] == ["add", "add", "add"]


async def test_dropped_connection_watches_again_from_the_last_version(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    # The first watch delivers two events, then its connection breaks.
    cluster.faults.append(Fault(after=2, error=client.Unreachable("reset by peer")))
    async with running(cluster) as (target, recorder):
        cluster.put("b")
        seen_version = cluster.put("c")["metadata"]["resourceVersion"]
        cluster.put("d")
        await until(lambda: consistent(cluster, target, recorder))
        assert len(cluster.lists) == 1
        assert [w.resource_version for w in cluster.watches[1:2]] == [seen_version]
        assert [verb for verb, _, _ in recorder.calls] == ["add"] * 4


async def test_unreachable_watches_back_off_and_retry_without_relisting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    for _ in range(4):
        cluster.faults.append(Fault(error=client.Unreachable("connection refused")))
    async with running(cluster) as (target, recorder):
        started = trio.current_time()
        await until(lambda: cluster.open_watches == 1)
        waited = trio.current_time() - started
        cluster.put("b")
        await until(lambda: consistent(cluster, target, recorder))
    assert len(cluster.lists) == 1
    assert len({w.resource_version for w in cluster.watches}) == 1
    # 0.8, 1.6, 3.2, 6.4 s, each jittered by a factor of 0.5 to 1.5.
    assert 0.5 * 12 <= waited <= 1.5 * 12 + 1


async def test_a_watch_ending_normally_resumes_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    async with running(cluster) as (target, recorder):
        cluster.put("b")
        await until(lambda: len(recorder.calls) == 2)
        cluster.drop_watches()
        await until(lambda: len(cluster.watches) == 2)
        cluster.put("c")
        await until(lambda: consistent(cluster, target, recorder))
    assert len(cluster.lists) == 1
    assert (
        cluster.watches[1].resource_version
        == cluster.objects["t1/default/b"]["metadata"]["resourceVersion"]
    )


async def test_watch_timeouts_are_randomized_between_5_and_10_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    async with running(cluster):
        await until(lambda: len(cluster.watches) >= 6, within=4 * 3600)
    timeouts = [w.timeout_seconds for w in cluster.watches]
    assert all(t is not None and 300 <= t < 600 for t in timeouts)
    assert len(set(timeouts)) > 1
    # Each ended at the server's timeout and resumed without a list.
    assert len(cluster.lists) == 1


async def test_bookmarks_advance_the_version_without_telling_handlers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("mine", labels={"app": "a"})
    async with running(cluster, label_selector="app=a") as (target, recorder):
        for i in range(5):
            cluster.put(f"other{i}", labels={"app": "b"})
        cluster.bookmark()
        await until(lambda: target.resource_version == str(cluster.revision))
        assert [verb for verb, _, _ in recorder.calls] == ["add"]
        cluster.drop_watches(client.Unreachable("reset"))
        await until(lambda: len(cluster.watches) == 2)
        assert cluster.watches[1].resource_version == str(cluster.revision)
        assert len(cluster.lists) == 1


async def test_label_selector_change_relists_and_deletes_what_no_longer_matches(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a1", labels={"app": "a", "tier": "x"})
    cluster.put("a2", labels={"app": "a"})
    cluster.put("b1", labels={"app": "b", "tier": "x"})
    async with running(cluster, label_selector="app=a") as (target, recorder):
        assert sorted(target.keys()) == ["t1/default/a1", "t1/default/a2"]
        told_before = len(recorder.calls)
        target.set_label_selector("tier=x")
        await until(lambda: len(cluster.lists) == 2 and cluster.open_watches == 1)
        assert cluster.lists[1].selectors == reflector.Selectors(label="tier=x")
        assert sorted(target.keys()) == ["t1/default/a1", "t1/default/b1"]
        assert sorted((verb, key) for verb, key, _ in recorder.calls[told_before:]) == [
            ("add", "t1/default/b1"),
            ("delete", "t1/default/a2"),
        ]
        # The new watch follows the new selector.
        cluster.put("c1", labels={"tier": "x"})
        cluster.put("c2", labels={"tier": "y"})
        await until(lambda: "t1/default/c1" in target)
        assert "t1/default/c2" not in target
        assert cluster.watches[-1].selectors == reflector.Selectors(label="tier=x")


async def test_field_selector_change_follows_a_new_range(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    for i in range(6):
        cluster.put(f"p{i}", node=f"n{i % 2}")
    async with running(cluster, field_selector="spec.nodeName=n0") as (target, recorder):
        assert len(target) == 3
        target.set_field_selector("spec.nodeName=n1")
        await until(lambda: len(cluster.lists) == 2 and cluster.open_watches == 1)
        assert sorted(target.keys()) == ["t1/default/p1", "t1/default/p3", "t1/default/p5"]
        assert target.selectors.field == "spec.nodeName=n1"
        assert recorder.picture == {
            k: o["metadata"]["resourceVersion"]
            for k, o in zip(target.keys(), target.list(), strict=True)
        }


async def test_selector_change_during_a_list_takes_the_new_selector(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a", labels={"app": "a"})
    cluster.put("b", labels={"app": "b"})
    cluster.list_faults.extend([client.Unreachable("down")] * 3)
    lw = cluster.lister_watcher(label_selector="app=a")
    target = informer.Informer(lw)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(target.run)
        await until(lambda: len(cluster.lists) == 2)
        target.set_label_selector("app=b")
        await target.wait_synced()
        assert target.keys() == ["t1/default/b"]
        nursery.cancel_scope.cancel()


async def test_list_failures_back_off_until_the_first_list_succeeds(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    cluster.list_faults.extend(
        [
            client.Unreachable("refused"),
            errors.ServiceUnavailable("starting"),
            errors.InternalError("x"),
        ]
    )
    target = informer.Informer(cluster.lister_watcher())
    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        await nursery.start(target.run)
        assert trio.current_time() - started >= 0.5 * (0.8 + 1.6 + 3.2)
        assert target.keys() == ["t1/default/a"]
        nursery.cancel_scope.cancel()
    assert len(cluster.lists) == 4
    assert sum("listing pods failed" in r.message for r in caplog.records) == 3


async def test_an_error_event_other_than_410_lists_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    cluster.put("a")
    cluster.faults.append(Fault(after=1, error=errors.InternalError("etcd is sad")))
    async with running(cluster) as (target, recorder):
        cluster.put("b")
        cluster.put("c")
        await until(lambda: len(cluster.lists) == 2 and consistent(cluster, target, recorder))
        assert [verb for verb, _, _ in recorder.calls] == ["add"] * 3


async def test_a_failing_handler_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    cluster = FakeCluster()
    async with running(cluster) as (target, recorder):

        def broken(obj: dict[str, object]) -> None:
            raise RuntimeError("handler bug")

        target.add_handler(on_add=broken)
        after = Recorder()
        after.attach(target)
        cluster.put("a")
        await until(lambda: consistent(cluster, target, recorder))
        assert after.picture == recorder.picture
    assert any("event handler" in r.message for r in caplog.records if r.levelno == logging.ERROR)


async def test_a_handler_added_late_is_told_of_everything_cached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cluster = FakeCluster()
    for name in "abc":
        cluster.put(name)
    async with running(cluster) as (target, _):
        late = Recorder()
        registration = late.attach(target)
        assert late.picture == versions(cluster)
        target.remove_handler(registration)
        cluster.put("d")
        await until(lambda: len(target) == 4)
        assert "t1/default/d" not in late.picture


@pytest.mark.parametrize("seed", range(8))
async def test_many_random_faults_lose_or_duplicate_nothing(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    """Drops, 410s and normal ends at random points while objects churn."""
    rng = random.Random(seed)
    cluster = FakeCluster()
    for i in range(20):
        cluster.put(f"p{i}")
    async with running(cluster) as (target, recorder):
        for round_ in range(60):
            for _ in range(rng.randrange(1, 8)):
                name = f"p{rng.randrange(30)}"
                key = f"t1/default/{name}"
                if key in cluster.objects and rng.random() < 0.3:
                    cluster.delete(key)
                else:
                    cluster.put(name, labels={"round": str(round_)})
            trouble = rng.random()
            if trouble < 0.2:
                cluster.drop_watches(client.Unreachable("reset"))
            elif trouble < 0.3:
                cluster.hold_watches()
                cluster.drop_watches(client.Unreachable("reset"))
                cluster.put(f"p{rng.randrange(30)}", labels={"while": "away"})
                cluster.compact()
                cluster.release_watches()
            elif trouble < 0.4:
                cluster.drop_watches()
            elif trouble < 0.5:
                cluster.faults.append(Fault(after=rng.randrange(3), error=client.Unreachable("x")))
            await trio.sleep(rng.random() * 3)
        await until(lambda: consistent(cluster, target, recorder))
    # The faults did happen: watches resumed, and 410s forced lists.
    assert len(cluster.watches) > 10
    assert len(cluster.lists) > 1


async def test_the_cache_keys_objects_by_their_resources_scope(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from ._fakes import NAMESPACES, NODES

    nodes = FakeCluster(NODES)
    nodes.put("n1")
    namespaces = FakeCluster(NAMESPACES)
    namespaces.put("ns1", tenant="t2")
    async with running(nodes) as (node_informer, _), running(namespaces) as (ns_informer, _):
        assert node_informer.keys() == ["n1"]
        assert ns_informer.keys() == ["t2/ns1"]
        assert node_informer.get("n1") is not None


def test_list_watch_leaves_out_what_the_scope_does_not_have() -> None:
    from ._fakes import NODES, FakeClient

    fake = FakeClient()
    nodes = reflector.list_watch(fake, NODES, namespace="x")  # type: ignore[arg-type]
    assert (nodes.tenant, nodes.namespace) == (None, None)
    pods = reflector.list_watch(fake, PODS, namespace="ns", label_selector="a=b")  # type: ignore[arg-type]
    assert (pods.tenant, pods.namespace) == ("all", "ns")
    assert pods.selectors == reflector.Selectors(label="a=b")
