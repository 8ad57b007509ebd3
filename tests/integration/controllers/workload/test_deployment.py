"""The Deployment controller against a real API server, with the ReplicaSet controller.

No nodes: a test "kubelet" marks pods Running and Ready a moment after they appear
(except pods whose image says they never become ready), and a sampler watches the pods
of a rollout as often as it can, so that the bounds of maxSurge and maxUnavailable are
checked at every moment it observes.
"""

from __future__ import annotations

import contextlib
import datetime
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from arktos_lite import client
from arktos_lite.api import errors
from arktos_lite.controllers import workload
from arktos_lite.controllers.workload import (
    _deployment as deployment_controller,
    _deployment_objects as objects,
)

from ..conftest import Controllers, eventually, resource

Obj = dict[str, Any]

PODS = resource("pods")
EVENTS = resource("events")
REPLICASETS = resource("replicasets", "apps")
DEPLOYMENTS = resource("deployments", "apps")

NEVER_READY = "never-ready"
TENANT = "system"
NAMESPACE = "default"

pytestmark = [
    pytest.mark.slow,
    # The controllers are cancelled at the end of each test, possibly in the middle of a
    # request; httpx then leaves that request's body stream unfinished, and the garbage
    # collector reports it, at some moment during a later test.
    pytest.mark.filterwarnings(
        "ignore:Async generator 'httpx._content.ByteStream.__aiter__':ResourceWarning"
    ),
]


def deployment(
    name: str,
    *,
    replicas: int,
    image: str = "nginx:1",
    strategy: Obj | None = None,
    **spec: Any,
) -> Obj:
    body: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            **spec,
        },
    }
    if strategy is not None:
        body["spec"]["strategy"] = strategy
    return body


def rolling(surge: int | str, unavailable: int | str) -> Obj:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def image_of(obj: Obj) -> str:
    spec = obj["spec"]
    if "template" in spec:
        spec = spec["template"]["spec"]
    return str(spec["containers"][0]["image"])


class Poller:
    """A test helper polling the API every `interval` seconds until told to stop.

    It stops between requests: a request cut off by cancellation leaves its body stream
    unfinished, which the test run reports as an unraisable warning.
    """

    interval = 0.03

    def __init__(self) -> None:
        self._stopping = trio.Event()
        self._stopped = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while not self._stopping.is_set():
                await self.poll()
                with trio.move_on_after(self.interval):
                    await self._stopping.wait()
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        self._stopping.set()
        await self._stopped.wait()

    async def poll(self) -> None:
        raise NotImplementedError


class Kubelet(Poller):
    """Marks pods Running and Ready `delay` seconds after it first sees them."""

    def __init__(self, api: client.Client, *, delay: float = 0.1) -> None:
        super().__init__()
        self._api = api
        self._delay = delay
        self._seen: dict[str, float] = {}

    async def poll(self) -> None:
        listed = await self._api.list(PODS, tenant=TENANT, namespace=NAMESPACE)
        now = trio.current_time()
        for pod in listed["items"]:
            if not active(pod) or ready(pod) or image_of(pod) == NEVER_READY:
                continue
            first = self._seen.setdefault(pod["metadata"]["uid"], now)
            if now - first >= self._delay:
                await self._make_ready(pod)

    async def _make_ready(self, pod: Obj) -> None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": stamp}],
        }
        with contextlib.suppress(errors.NotFound):
            await self._api.patch(
                PODS,
                pod["metadata"]["name"],
                {"status": status},
                subresource="status",
                tenant=TENANT,
                namespace=NAMESPACE,
            )


class Sampler(Poller):
    """Looks at the pods and ReplicaSets of one Deployment again and again."""

    interval = 0.01

    def __init__(self, api: client.Client, app: str) -> None:
        super().__init__()
        self._api = api
        self._app = app
        self.samples = 0
        self.most_pods = 0
        self.fewest_ready: float = math.inf
        self.most_asked = 0
        self.both_running = 0
        self.templates: set[str] = set()

    async def poll(self) -> None:
        selector = f"app={self._app}"
        pods = await self._api.list(
            PODS, label_selector=selector, tenant=TENANT, namespace=NAMESPACE
        )
        sets = await self._api.list(
            REPLICASETS, label_selector=selector, tenant=TENANT, namespace=NAMESPACE
        )
        running = [pod for pod in pods["items"] if active(pod)]
        self.samples += 1
        self.most_pods = max(self.most_pods, len(running))
        self.fewest_ready = min(self.fewest_ready, sum(1 for pod in running if ready(pod)))
        self.most_asked = max(self.most_asked, sum(rs["spec"]["replicas"] for rs in sets["items"]))
        hashes = {pod["metadata"]["labels"].get("pod-template-hash") for pod in running}
        self.templates |= {str(h) for h in hashes}
        if len(hashes) > 1:
            self.both_running += 1


@pytest.fixture
async def kubelet(api: client.Client, controllers: Controllers) -> AsyncIterator[Kubelet]:
    running = Kubelet(api)
    await controllers.nursery.start(running.run)
    yield running
    await running.stop()


class Samplers:
    def __init__(self, api: client.Client, nursery: trio.Nursery) -> None:
        self._api = api
        self._nursery = nursery
        self.started: list[Sampler] = []

    async def start(self, app: str) -> Sampler:
        sampler = Sampler(self._api, app)
        await self._nursery.start(sampler.run)
        self.started.append(sampler)
        return sampler


@pytest.fixture
async def samplers(api: client.Client, controllers: Controllers) -> AsyncIterator[Samplers]:
    running = Samplers(api, controllers.nursery)
    yield running
    for sampler in running.started:
        await sampler.stop()


@pytest.fixture
async def controller(
    api: client.Client, controllers: Controllers, kubelet: Kubelet
) -> deployment_controller.DeploymentController:
    options = workload.ControllerOptions(workers=4)
    replicasets = workload.ReplicaSetController(api, options=options)
    deployments = deployment_controller.DeploymentController(api, options=options)
    await controllers.start(replicasets, deployments)
    await replicasets.set_range(workload.HashRange.whole())
    await deployments.set_range(workload.HashRange.whole())
    return deployments


async def create(api: client.Client, body: Obj) -> Obj:
    return await api.create(DEPLOYMENTS, body, tenant=TENANT, namespace=NAMESPACE)


async def get(api: client.Client, name: str) -> Obj:
    return await api.get(DEPLOYMENTS, name, tenant=TENANT, namespace=NAMESPACE)


async def patch(api: client.Client, name: str, body: Any, *, patch_type: str = "merge") -> Obj:
    return await api.patch(
        DEPLOYMENTS, name, body, patch_type=patch_type, tenant=TENANT, namespace=NAMESPACE
    )


async def set_image(api: client.Client, name: str, image: str) -> Obj:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    return await patch(api, name, body, patch_type="strategic")


async def replicasets_of(api: client.Client, d: Obj) -> list[Obj]:
    """The ReplicaSets `d` controls, by image (creation times are only to the second)."""
    listed = await api.list(REPLICASETS, tenant=TENANT, namespace=NAMESPACE)
    uid = d["metadata"]["uid"]
    owned = [
        rs for rs in listed["items"] if objects.is_controlled_by(rs, {"metadata": {"uid": uid}})
    ]
    return sorted(owned, key=image_of)


def condition(d: Obj, type_: str) -> Obj | None:
    return objects.get_condition(d.get("status") or {}, type_)


async def rolled_out(api: client.Client, name: str) -> Obj | None:
    """The Deployment once `kubectl rollout status` would call it successfully rolled out."""
    d = await get(api, name)
    status = d.get("status") or {}
    wanted = d["spec"]["replicas"]
    if (
        status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
    ):
        return d
    return None


async def settled(api: client.Client, d: Obj, *, tenant: str = TENANT) -> bool:
    """Whether the ReplicaSets and the Deployment report what they ask for, so that no
    controller is still at work when the test ends (a request cut off by the end of a test
    leaves a warning behind)."""
    name = d["metadata"]["name"]
    d = await api.get(DEPLOYMENTS, name, tenant=tenant, namespace=NAMESPACE)
    listed = await api.list(REPLICASETS, tenant=tenant, namespace=NAMESPACE)
    sets = [rs for rs in listed["items"] if objects.is_controlled_by(rs, d)]
    status = d.get("status") or {}
    return (
        all(
            (rs.get("status") or {}).get("replicas", 0) == rs["spec"]["replicas"]
            and (rs.get("status") or {}).get("observedGeneration", 0)
            >= rs["metadata"]["generation"]
            for rs in sets
        )
        and status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("replicas", 0) == sum(rs["spec"]["replicas"] for rs in sets)
    )


async def events_of(api: client.Client, d: Obj) -> list[Obj]:
    listed = await api.list(EVENTS, tenant=TENANT, namespace=NAMESPACE)
    return [
        event
        for event in listed["items"]
        if event["involvedObject"].get("uid") == d["metadata"]["uid"]
    ]


async def test_a_deployment_gets_a_replicaset_with_its_template_and_hash(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    d = await create(api, deployment("web", replicas=3))
    d = await eventually(lambda: rolled_out(api, "web"), 15)
    (rs,) = await replicasets_of(api, d)
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    (ref,) = rs["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == (
        "Deployment",
        d["metadata"]["uid"],
        True,
    )
    assert ref["hashKey"] == d["metadata"]["hashKey"]
    notes = rs["metadata"]["annotations"]
    assert notes[objects.REVISION] == "1"
    assert (notes[objects.DESIRED_REPLICAS], notes[objects.MAX_REPLICAS]) == ("3", "4")
    assert d["metadata"]["annotations"][objects.REVISION] == "1"
    status = d["status"]
    assert (status["readyReplicas"], status.get("unavailableReplicas", 0)) == (3, 0)
    available = condition(d, "Available")
    progressing = condition(d, "Progressing")
    assert available is not None
    assert available["reason"] == "MinimumReplicasAvailable"
    assert progressing is not None
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'

    async def scaled_event() -> list[Obj]:
        return [
            e
            for e in await events_of(api, d)
            if e["reason"] == "ScalingReplicaSet"
            and e["message"] == f"Scaled up replica set web-{pod_hash} from 0 to 3"
        ]

    await eventually(scaled_event)


async def test_a_rolling_update_of_ten_respects_surge_and_unavailability(
    api: client.Client,
    controller: deployment_controller.DeploymentController,
    samplers: Samplers,
) -> None:
    await create(api, deployment("web", replicas=10, strategy=rolling(3, 2)))
    d = await eventually(lambda: rolled_out(api, "web"), 20)
    sampler = await samplers.start("web")
    await set_image(api, "web", "nginx:2")
    d = await eventually(lambda: rolled_out(api, "web"), 30)
    old, new = await replicasets_of(api, d)
    assert image_of(old) == "nginx:1"
    assert image_of(new) == "nginx:2"
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 10)
    assert new["metadata"]["annotations"][objects.REVISION] == "2"
    assert d["metadata"]["annotations"][objects.REVISION] == "2"
    # Several moments in the middle of the rollout were seen, none out of bounds.
    assert sampler.samples > 10
    assert sampler.both_running > 0
    assert sampler.most_pods <= 13
    assert sampler.most_asked <= 13
    assert sampler.fewest_ready >= 8
    messages = {e["message"] for e in await events_of(api, d)}
    old_name, new_name = old["metadata"]["name"], new["metadata"]["name"]
    assert f"Scaled up replica set {new_name} from 0 to 3" in messages
    assert any(m.startswith(f"Scaled down replica set {old_name} from 10 to") for m in messages)


async def test_percentages_bound_a_rollout_too(
    api: client.Client,
    controller: deployment_controller.DeploymentController,
    samplers: Samplers,
) -> None:
    # 30% of 10: a surge of 3 (rounded up) and 3 unavailable (rounded down).
    await create(api, deployment("pct", replicas=10, strategy=rolling("30%", "30%")))
    await eventually(lambda: rolled_out(api, "pct"), 20)
    sampler = await samplers.start("pct")
    await set_image(api, "pct", "nginx:2")
    await eventually(lambda: rolled_out(api, "pct"), 30)
    assert sampler.most_pods <= 13
    assert sampler.fewest_ready >= 7


async def test_undo_rolls_back_to_the_old_replicaset(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await create(api, deployment("web", replicas=4))
    await eventually(lambda: rolled_out(api, "web"), 15)
    await set_image(api, "web", "nginx:2")
    d = await eventually(lambda: rolled_out(api, "web"), 20)
    first, second = await replicasets_of(api, d)
    # What `kubectl rollout undo` does: the old ReplicaSet's template, without its hash.
    old_template = objects.without_hash(first["spec"]["template"])
    await patch(
        api,
        "web",
        [{"op": "replace", "path": "/spec/template", "value": old_template}],
        patch_type="json",
    )

    async def back() -> Obj | None:
        d = await rolled_out(api, "web")
        return d if d is not None and image_of(d) == "nginx:1" else None

    d = await eventually(back, 20)
    again, other = await replicasets_of(api, d)  # nginx:1, nginx:2
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert other["metadata"]["uid"] == second["metadata"]["uid"]
    assert (again["spec"]["replicas"], other["spec"]["replicas"]) == (4, 0)
    assert again["metadata"]["annotations"][objects.REVISION] == "3"
    assert again["metadata"]["annotations"][objects.REVISION_HISTORY] == "1"
    assert d["metadata"]["annotations"][objects.REVISION] == "3"


async def test_the_deprecated_rollback_annotation_rolls_back(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await create(api, deployment("web", replicas=2))
    await eventually(lambda: rolled_out(api, "web"), 15)
    await set_image(api, "web", "nginx:2")
    await eventually(lambda: rolled_out(api, "web"), 20)
    await patch(api, "web", {"metadata": {"annotations": {objects.ROLLBACK_TO: "0"}}})

    async def back() -> Obj | None:
        d = await rolled_out(api, "web")
        if d is None or image_of(d) != "nginx:1":
            return None
        return d if objects.ROLLBACK_TO not in d["metadata"].get("annotations", {}) else None

    d = await eventually(back, 20)
    assert len(await replicasets_of(api, d)) == 2
    reasons = {e["reason"] for e in await events_of(api, d)}
    assert "DeploymentRollback" in reasons


async def test_a_paused_deployment_makes_no_progress_but_scales(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await create(api, deployment("web", replicas=3, progressDeadlineSeconds=600))
    await eventually(lambda: rolled_out(api, "web"), 15)
    await patch(api, "web", {"spec": {"paused": True}})
    await set_image(api, "web", "nginx:2")

    async def paused() -> Obj | None:
        d = await get(api, "web")
        progressing = condition(d, "Progressing")
        if progressing is None or progressing["reason"] != "DeploymentPaused":
            return None
        return d

    d = await eventually(paused, 10)
    assert condition(d, "Progressing")["status"] == "Unknown"  # type: ignore[index]
    await trio.sleep(1.0)
    (rs,) = await replicasets_of(api, d)
    assert image_of(rs) == "nginx:1"
    # Scaling still happens.
    await patch(api, "web", {"spec": {"replicas": 5}})

    async def scaled() -> bool:
        (rs,) = await replicasets_of(api, d)
        return bool(rs["spec"]["replicas"] == 5)

    await eventually(scaled, 10)
    await patch(api, "web", {"spec": {"paused": False}})

    async def resumed() -> Obj | None:
        d = await rolled_out(api, "web")
        return d if d is not None and image_of(d) == "nginx:2" else None

    d = await eventually(resumed, 20)
    old, new = await replicasets_of(api, d)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 5)
    progressing = condition(d, "Progressing")
    assert progressing is not None
    assert progressing["reason"] == "NewReplicaSetAvailable"


async def test_recreate_takes_the_old_pods_away_before_the_new_ones_come(
    api: client.Client,
    controller: deployment_controller.DeploymentController,
    samplers: Samplers,
) -> None:
    await create(api, deployment("rec", replicas=4, strategy={"type": "Recreate"}))
    await eventually(lambda: rolled_out(api, "rec"), 15)
    sampler = await samplers.start("rec")
    await set_image(api, "rec", "nginx:2")

    async def done() -> Obj | None:
        d = await rolled_out(api, "rec")
        return d if d is not None and image_of(d) == "nginx:2" else None

    d = await eventually(done, 20)
    old, new = await replicasets_of(api, d)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)
    assert sampler.samples > 5
    assert len(sampler.templates) == 2
    assert sampler.both_running == 0
    assert sampler.most_pods <= 4


async def test_revision_history_limit_prunes_old_replicasets(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await create(api, deployment("web", replicas=1, revisionHistoryLimit=1))
    await eventually(lambda: rolled_out(api, "web"), 15)
    for version in (2, 3, 4):
        await set_image(api, "web", f"nginx:{version}")

        async def at(version: int = version) -> Obj | None:
            d = await rolled_out(api, "web")
            return d if d is not None and image_of(d) == f"nginx:{version}" else None

        await eventually(at, 20)
    d = await get(api, "web")

    async def pruned() -> list[Obj] | None:
        sets = await replicasets_of(api, d)
        return sets if len(sets) == 2 else None

    old, new = await eventually(pruned, 15)
    assert (image_of(old), image_of(new)) == ("nginx:3", "nginx:4")
    assert new["metadata"]["annotations"][objects.REVISION] == "4"


async def test_no_progress_past_the_deadline_is_reported(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await create(api, deployment("stuck", replicas=2, image=NEVER_READY, progressDeadlineSeconds=2))

    async def timed_out() -> Obj | None:
        d = await get(api, "stuck")
        progressing = condition(d, "Progressing")
        if progressing is None or progressing["reason"] != "ProgressDeadlineExceeded":
            return None
        return progressing

    progressing = await eventually(timed_out, 15)
    assert progressing["status"] == "False"
    assert progressing["message"].endswith("has timed out progressing.")
    d = await get(api, "stuck")
    available = condition(d, "Available")
    assert available is not None
    assert available["reason"] == "MinimumReplicasUnavailable"


async def test_a_matching_orphan_replicaset_is_adopted_and_used(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    body = deployment("adopt", replicas=2)
    template = {**body["spec"]["template"]}
    template["metadata"] = {"labels": {"app": "adopt", "pod-template-hash": "orphan"}}
    orphan = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "adopt-orphan", "labels": {"app": "adopt"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "adopt", "pod-template-hash": "orphan"}},
            "template": template,
        },
    }
    await api.create(REPLICASETS, orphan, tenant=TENANT, namespace=NAMESPACE)
    # Paused, it makes no ReplicaSet of its own while the orphan may still be on its way
    # to the controller's cache; adopting goes on regardless.
    body["spec"]["paused"] = True
    d = await create(api, body)

    async def adopted() -> bool:
        return [rs["metadata"]["name"] for rs in await replicasets_of(api, d)] == ["adopt-orphan"]

    await eventually(adopted, 15)
    await patch(api, "adopt", {"spec": {"paused": False}})
    d = await eventually(lambda: rolled_out(api, "adopt"), 15)
    (rs,) = await replicasets_of(api, d)
    assert rs["metadata"]["name"] == "adopt-orphan"
    assert rs["metadata"]["annotations"][objects.REVISION] == "1"


async def test_a_hash_collision_raises_the_collision_count(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    # Paused, it makes no ReplicaSet: there is time to take its name.
    d = await create(api, deployment("col", replicas=1, paused=True))
    taken = f"col-{objects.template_hash(d['spec']['template'])}"
    squatter = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": taken},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"other": "x"}},
            "template": {
                "metadata": {"labels": {"other": "x"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    await api.create(REPLICASETS, squatter, tenant=TENANT, namespace=NAMESPACE)
    await patch(api, "col", {"spec": {"paused": False}})
    d = await eventually(lambda: rolled_out(api, "col"), 15)
    assert d["status"]["collisionCount"] == 1
    (rs,) = await replicasets_of(api, d)
    assert rs["metadata"]["name"] != taken
    assert rs["metadata"]["name"] == f"col-{objects.template_hash(d['spec']['template'], 1)}"


async def test_only_deployments_in_range_are_handled(
    api: client.Client, controllers: Controllers, kubelet: Kubelet
) -> None:
    dc = deployment_controller.DeploymentController(api)
    rsc = workload.ReplicaSetController(api)
    await controllers.start(rsc, dc)
    await rsc.set_range(workload.HashRange.whole())
    d = await create(api, deployment("ranged", replicas=1))
    key = d["metadata"]["hashKey"]
    elsewhere = (
        workload.HashRange(low=key, high=workload.MAX_HASH_KEY)
        if key < workload.MAX_HASH_KEY
        else workload.HashRange(low=-1, high=key - 1)
    )
    await dc.set_range(elsewhere)
    await trio.sleep(1.0)
    assert await replicasets_of(api, d) == []
    assert dc.workload_num() == 0
    await dc.set_range(workload.HashRange(low=key - 1, high=key))
    await eventually(lambda: rolled_out(api, "ranged"), 15)
    assert dc.workload_num() == 1


async def test_scaling_in_the_middle_of_a_rollout_is_proportional(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await create(api, deployment("web", replicas=10, strategy=rolling(3, 2)))
    await eventually(lambda: rolled_out(api, "web"), 20)
    # Its pods never become ready: the rollout stops with 8 old and 5 new replicas.
    await set_image(api, "web", NEVER_READY)

    async def stuck_at(old_size: int, new_size: int) -> bool:
        d = await get(api, "web")
        sizes = {image_of(rs): rs["spec"]["replicas"] for rs in await replicasets_of(api, d)}
        return sizes == {"nginx:1": old_size, NEVER_READY: new_size}

    await eventually(lambda: stuck_at(8, 5), 15)
    await patch(api, "web", {"spec": {"replicas": 20}})
    # 23 allowed now, was 13: 8 * 23/13 rounds to 14, 5 * 23/13 to 9.
    await eventually(lambda: stuck_at(14, 9), 15)
    d = await get(api, "web")
    sets = await replicasets_of(api, d)
    for rs in sets:
        notes = rs["metadata"]["annotations"]
        assert (notes[objects.DESIRED_REPLICAS], notes[objects.MAX_REPLICAS]) == ("20", "23")
    new, old = sets  # never-ready, nginx:1
    wanted = {
        f"Scaled up replica set {old['metadata']['name']} from 8 to 14",
        f"Scaled up replica set {new['metadata']['name']} from 5 to 9",
    }

    async def told() -> bool:
        return wanted <= {e["message"] for e in await events_of(api, d)}

    await eventually(told, 10)
    await eventually(lambda: settled(api, d), 15)


async def test_a_deployment_in_another_tenant_gets_its_replicaset_there(
    api: client.Client, controller: deployment_controller.DeploymentController
) -> None:
    await api.create(resource("tenants"), {"metadata": {"name": "acme"}})

    async def namespace_ready() -> bool:
        try:
            await api.create(
                resource("namespaces"), {"metadata": {"name": "default"}}, tenant="acme"
            )
        except errors.AlreadyExists:
            return True
        return True

    await eventually(namespace_ready)
    d = await api.create(
        DEPLOYMENTS, deployment("web", replicas=2), tenant="acme", namespace="default"
    )

    async def replicaset_there() -> Obj | None:
        listed = await api.list(REPLICASETS, tenant="acme", namespace="default")
        owned = [rs for rs in listed["items"] if objects.is_controlled_by(rs, d)]
        return owned[0] if owned and owned[0]["spec"]["replicas"] == 2 else None

    rs = await eventually(replicaset_there, 15)
    assert rs["metadata"]["tenant"] == "acme"
    await eventually(lambda: settled(api, d, tenant="acme"), 15)
    assert await replicasets_of(api, {"metadata": {"uid": d["metadata"]["uid"]}}) == []
