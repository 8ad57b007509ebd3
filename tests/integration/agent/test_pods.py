"""The pod manager against a real API server, running pods on the fake runtime.

Each test starts an API server, a pod informer for node `n1` and a `PodManager` over a
`FakeRuntime`, with small back-offs and a fast PLEG so that a lifecycle takes well under
a second or two.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.agent._pods import PodManager
from arktos_lite.agent._runtimes import NamedRuntime, RuntimeSet, WorkloadType
from arktos_lite.runtime import _errors as runtime_errors
from arktos_lite.runtime._fake import FakeRuntime, command_behaviour
from arktos_lite.runtime._protocol import ExecResult
from arktos_lite.runtime.cri import api_pb2 as cri

from ..controllers.conftest import CONFIGMAPS, EVENTS, PODS, eventually, exists

Obj = dict[str, Any]
NODE = "n1"

pytestmark = pytest.mark.filterwarnings(
    # The manager is cancelled mid-request (a status write, an event) when a test ends;
    # see tests/integration/controllers/workload/test_partitioned.py.
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__':ResourceWarning"
)


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime(behaviour=command_behaviour, images=["present:1"])


class Agent:
    """Starts pod managers for node n1 over one fake runtime, each stoppable alone."""

    def __init__(self, api: client.Client, fake: FakeRuntime, root: Path, nursery: trio.Nursery):
        self.api = api
        self.fake = fake
        self.root = root
        self.nursery = nursery

    @contextlib.asynccontextmanager
    async def manager(self, **options: Any) -> AsyncIterator[PodManager]:
        async with trio.open_nursery() as nursery:
            informers = machinery.InformerFactory(self.api)
            pods = informers.informer(PODS, field_selector=f"spec.nodeName={NODE}")
            recorder = machinery.EventRecorder(self.api, component="agent-tests", host=NODE)
            await nursery.start(recorder.run)
            await nursery.start(informers.run)
            settings: dict[str, Any] = {
                "relist_interval": 0.05,
                "backoff_base": 1.0,
                "backoff_max": 2.0,
                "resync_interval": 5.0,
                "stop_timeout": 2.0,
            }
            settings.update(options)
            manager = PodManager(
                self.api,
                node_name=NODE,
                runtimes=RuntimeSet((NamedRuntime("fake", WorkloadType.CONTAINER, self.fake),)),
                root_dir=self.root,
                node_ip="127.0.0.1",
                recorder=recorder,
                pods=pods,
                **settings,
            )
            await nursery.start(manager.run)
            yield manager
            nursery.cancel_scope.cancel()


@pytest.fixture
async def agent(api: client.Client, fake: FakeRuntime, tmp_path: Path) -> AsyncIterator[Agent]:
    async with trio.open_nursery() as nursery:
        yield Agent(api, fake, tmp_path, nursery)
        nursery.cancel_scope.cancel()


def pod_object(
    name: str = "web",
    *,
    command: Sequence[str] = ("sleep", "infinity"),
    policy: str = "Always",
    containers: Sequence[Obj] | None = None,
    **spec: Any,
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": policy,
            "containers": containers
            if containers is not None
            else [{"name": "app", "image": "present:1", "command": list(command)}],
            **spec,
        },
    }


async def create(api: client.Client, obj: Obj) -> Obj:
    return await api.create(PODS, obj, namespace="default")


async def get(api: client.Client, name: str = "web") -> Obj | None:
    return await exists(api, PODS, name, namespace="default")


def state_of(pod: Obj | None, container: str = "app", key: str = "containerStatuses") -> Obj:
    for entry in ((pod or {}).get("status") or {}).get(key) or ():
        if entry["name"] == container:
            return dict(entry)
    return {}


def phase_is(api: client.Client, phase: str, name: str = "web") -> Callable[[], Any]:
    async def check() -> Obj | None:
        pod = await get(api, name)
        return pod if pod and pod["status"].get("phase") == phase else None

    return check


def running_ids(fake: FakeRuntime) -> set[str]:
    return {
        cid
        for cid in fake.container_ids
        if fake._containers[cid].listed.state == cri.CONTAINER_RUNNING
    }


async def test_a_bound_pod_runs_and_reports_its_status(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    created = await create(api, pod_object())
    uid = created["metadata"]["uid"]
    async with agent.manager():

        async def ready() -> Obj | None:
            pod = await get(api)
            return pod if state_of(pod).get("ready") else None

        pod = await eventually(ready)
    status = pod["status"]
    assert status["phase"] == "Running"
    entry = state_of(pod)
    assert "running" in entry["state"]
    assert entry["restartCount"] == 0
    assert entry["started"] is True
    assert entry["containerID"].startswith("fake://")
    assert status["podIP"].startswith("10.88.")
    assert status["hostIP"] == "127.0.0.1"
    assert status["qosClass"] == "BestEffort"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True"
    assert conditions["PodReadyToStartContainers"] == "True"
    # The runtime got what kubelet would have told it.
    [sandbox] = await fake.list_pod_sandbox()
    assert sandbox.labels[podconfig.POD_UID] == uid
    assert sandbox.labels[podconfig.POD_TENANT] == "system"
    sandbox_status = await fake.pod_sandbox_status(sandbox.id)
    [container] = await fake.list_containers()
    container_status = await fake.container_status(container.id)
    assert container.labels[podconfig.CONTAINER_NAME] == "app"
    assert container.annotations[podconfig.RESTART_COUNT] == "0"
    assert list(fake._containers[container.id].config.command) == ["sleep", "infinity"]
    expected_dir = agent.root / "pods" / f"system_default_web_{uid}" / "logs"
    assert sandbox_status.metadata.name == "web"
    assert container_status.log_path == f"{expected_dir}/app/0.log"
    assert entry["containerID"] == f"fake://{container.id}"


async def test_status_is_not_rewritten_while_nothing_changes(
    api: client.Client, agent: Agent
) -> None:
    await create(api, pod_object())
    async with agent.manager():
        pod = await eventually(lambda: _ready(api))
        version = pod["metadata"]["resourceVersion"]
        await trio.sleep(0.5)
        again = await get(api)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == version


async def _ready(api: client.Client) -> Obj | None:
    pod = await get(api)
    return pod if state_of(pod).get("ready") else None


async def test_a_crashing_container_restarts_with_growing_back_off(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    created = await create(api, pod_object())
    uid = created["metadata"]["uid"]
    async with agent.manager():
        await eventually(lambda: _ready(api))
        [first] = running_ids(fake)
        fake.exit(first, 1)

        async def restarted(count: int) -> Obj | None:
            pod = await get(api)
            entry = state_of(pod)
            return (
                pod if entry.get("restartCount") == count and "running" in entry["state"] else None
            )

        pod = await eventually(lambda: restarted(1))
        last = state_of(pod)["lastState"]["terminated"]
        assert (last["exitCode"], last["reason"]) == (1, "Error")
        [second] = running_ids(fake)
        fake.exit(second, 2)

        async def backing_off() -> Obj | None:
            pod = await get(api)
            waiting = state_of(pod).get("state", {}).get("waiting") or {}
            return waiting if waiting.get("reason") == "CrashLoopBackOff" else None

        waiting = await eventually(backing_off)
        assert waiting["message"] == (
            f"back-off 1s restarting failed container=app pod=web_default({uid})"
        )
        now = await get(api)
        assert now is not None
        assert now["status"]["phase"] == "Running"
        assert state_of(now)["lastState"]["terminated"]["exitCode"] == 2
        await eventually(lambda: restarted(2), timeout=5)
        [third] = running_ids(fake)
        fake.exit(third, 3)
        waiting = await eventually(backing_off)
        assert waiting["message"].startswith("back-off 2s ")

        async def back_off_event() -> bool:
            events = await api.list(EVENTS, namespace="default")
            return any(e["reason"] == "BackOff" for e in events["items"])

        await eventually(back_off_event)


@pytest.mark.parametrize(("code", "phase"), [(0, "Succeeded"), (1, "Failed")])
async def test_a_pod_that_never_restarts_ends(
    api: client.Client, agent: Agent, fake: FakeRuntime, code: int, phase: str
) -> None:
    await create(api, pod_object(command=["sh", "-c", f"sleep 0.3; exit {code}"], policy="Never"))
    async with agent.manager():
        pod = await eventually(phase_is(api, phase))
        terminated = state_of(pod)["state"]["terminated"]
        assert terminated["exitCode"] == code
        assert terminated["reason"] == ("Completed" if code == 0 else "Error")
        assert state_of(pod)["restartCount"] == 0

        async def sandbox_stopped() -> bool:
            sandboxes = await fake.list_pod_sandbox()
            return all(s.state == cri.SANDBOX_NOTREADY for s in sandboxes)

        await eventually(sandbox_stopped)
        pod = await eventually(phase_is(api, phase))
        conditions = {c["type"]: c for c in pod["status"]["conditions"]}
        assert conditions["Ready"]["reason"] == "PodCompleted"
    assert fake.calls["start_container"] == 1


async def test_on_failure_restarts_only_failures(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    await create(api, pod_object(command=["sh", "-c", "exit 0"], policy="OnFailure"))
    async with agent.manager():
        await eventually(phase_is(api, "Succeeded"))
    assert fake.calls["start_container"] == 1


async def test_init_containers_run_in_order_before_the_app(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    init = [
        {"name": "first", "image": "present:1", "command": ["sh", "-c", "sleep 0.2; exit 0"]},
        {"name": "second", "image": "present:1", "command": ["true"]},
    ]
    await create(api, pod_object(initContainers=init))
    async with agent.manager():
        pod = await eventually(lambda: _ready(api))
    for name in ("first", "second"):
        terminated = state_of(pod, name, "initContainerStatuses")["state"]["terminated"]
        assert terminated["reason"] == "Completed"
    starts = sorted(
        fake._containers.values(),
        key=lambda c: c.status.started_at,
    )
    assert [c.config.metadata.name for c in starts] == ["first", "second", "app"]
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Initialized"] == "True"


async def test_a_failed_init_container_fails_a_never_pod(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    init = [{"name": "setup", "image": "present:1", "command": ["false"]}]
    await create(api, pod_object(policy="Never", initContainers=init))
    async with agent.manager():
        pod = await eventually(phase_is(api, "Failed"))
    assert state_of(pod, "setup", "initContainerStatuses")["state"]["terminated"]["exitCode"] == 1
    assert state_of(pod)["state"]["waiting"]["reason"] == "PodInitializing"
    assert {c.config.metadata.name for c in fake._containers.values()} == {"setup"}


async def test_image_pull_policies(api: client.Client, agent: Agent, fake: FakeRuntime) -> None:
    containers = [
        {
            "name": "never",
            "image": "absent:1",
            "imagePullPolicy": "Never",
            "command": ["sleep", "9"],
        },
        {"name": "broken", "image": "broken:1", "command": ["sleep", "9"]},
        {"name": "pulled", "image": "fresh:1", "command": ["sleep", "9"]},
    ]
    fake.pull_errors["broken:1"] = runtime_errors.NotFound("manifest unknown")
    await create(api, pod_object(containers=containers))
    async with agent.manager():

        async def held() -> Obj | None:
            pod = await get(api)
            never = state_of(pod, "never").get("state", {}).get("waiting", {})
            broken = state_of(pod, "broken").get("state", {}).get("waiting", {})
            pulled = state_of(pod, "pulled").get("state", {})
            if never and broken and "running" in pulled:
                return {"never": never, "broken": broken}
            return None

        found = await eventually(held)
    assert found["never"]["reason"] == "ErrImageNeverPull"
    assert found["never"]["message"] == (
        'Container image "absent:1" is not present with pull policy of Never'
    )
    assert found["broken"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "manifest unknown" in found["broken"]["message"]
    assert await fake.image_status("fresh:1") is not None


async def test_a_missing_config_map_holds_the_container_back(
    api: client.Client, agent: Agent
) -> None:
    containers = [
        {
            "name": "app",
            "image": "present:1",
            "command": ["sleep", "9"],
            "env": [
                {
                    "name": "X",
                    "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "x"}},
                }
            ],
        }
    ]
    await create(api, pod_object(containers=containers))
    async with agent.manager():

        async def config_error() -> Obj | None:
            waiting = state_of(await get(api)).get("state", {}).get("waiting") or {}
            return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

        waiting = await eventually(config_error)
    assert "missing" in waiting["message"]


async def test_deleting_a_pod_stops_it_and_removes_the_object(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    calls: list[list[str]] = []

    def handler(container_id: str, cmd: Sequence[str]) -> ExecResult:
        calls.append(list(cmd))
        return ExecResult(b"", b"", 0)

    fake.exec_handler = handler
    containers = [
        {
            "name": "app",
            "image": "present:1",
            "command": ["sleep", "infinity"],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo bye"]}}},
        }
    ]
    await create(api, pod_object(containers=containers))
    async with agent.manager():
        await eventually(lambda: _ready(api))
        await api.delete(PODS, "web", namespace="default")

        async def gone() -> bool:
            return await get(api) is None

        await eventually(gone)
    assert calls == [["sh", "-c", "echo bye"]]
    assert fake.sandbox_ids == []
    assert fake.container_ids == []


async def test_a_new_manager_adopts_running_pods_and_removes_orphans(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    await create(api, pod_object())
    async with agent.manager():
        await eventually(lambda: _ready(api))
    [container_id] = running_ids(fake)
    # A sandbox of a pod this node no longer has, as a crashed agent may leave behind.
    ghost = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name="ghost", uid="ghost-uid", namespace="default"),
        labels={podconfig.POD_UID: "ghost-uid"},
    )
    ghost_id = await fake.run_pod_sandbox(ghost)
    await fake.start_container(
        await fake.create_container(
            ghost_id,
            cri.ContainerConfig(
                metadata=cri.ContainerMetadata(name="c"),
                labels={podconfig.POD_UID: "ghost-uid"},
            ),
            ghost,
        )
    )
    starts = fake.calls["start_container"]
    async with agent.manager():

        async def orphan_removed() -> bool:
            return ghost_id not in fake.sandbox_ids

        await eventually(orphan_removed)
        await trio.sleep(0.3)
        pod = await get(api)
    assert running_ids(fake) == {container_id}
    assert fake.calls["start_container"] == starts
    assert state_of(pod)["ready"] is True
    assert state_of(pod)["restartCount"] == 0


async def test_stop_all_stops_pods_but_keeps_objects(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    await create(api, pod_object("a"))
    await create(api, pod_object("b"))
    async with agent.manager() as manager:
        await eventually(lambda: len(running_ids(fake)) == 2)
        with trio.fail_after(5):
            await manager.stop_all()
    assert fake.sandbox_ids == []
    assert await get(api, "a") is not None
    assert await get(api, "b") is not None


async def test_locate_finds_current_and_previous_containers(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    await create(api, pod_object())
    async with agent.manager() as manager:
        await eventually(lambda: _ready(api))
        located = await manager.locate(
            tenant="system", namespace="default", pod="web", container="app", previous=False
        )
        assert located.running
        assert located.log_path.name == "0.log"
        assert located.runtime is fake
        with pytest.raises(LookupError, match="previous terminated container"):
            await manager.locate(
                tenant="system", namespace="default", pod="web", container="app", previous=True
            )
        fake.exit(located.container_id, 1)

        async def restarted() -> bool:
            return state_of(await get(api)).get("restartCount") == 1

        await eventually(restarted)
        previous = await manager.locate(
            tenant="system", namespace="default", pod="web", container="app", previous=True
        )
        assert previous.container_id == located.container_id
        assert not previous.running
        with pytest.raises(LookupError, match="not valid"):
            await manager.locate(
                tenant="system", namespace="default", pod="web", container="nope", previous=False
            )
        with pytest.raises(LookupError):
            await manager.locate(
                tenant="system", namespace="default", pod="nope", container="app", previous=False
            )


async def test_a_pod_without_a_runtime_of_its_type_says_so(
    api: client.Client, agent: Agent, fake: FakeRuntime, tmp_path: Path
) -> None:
    await create(api, pod_object())
    async with trio.open_nursery() as nursery:
        informers = machinery.InformerFactory(api)
        pods = informers.informer(PODS, field_selector=f"spec.nodeName={NODE}")
        recorder = machinery.EventRecorder(api, component="agent-tests")
        await nursery.start(recorder.run)
        await nursery.start(informers.run)
        manager = PodManager(
            api,
            node_name=NODE,
            runtimes=RuntimeSet((NamedRuntime("vms", WorkloadType.VM, fake),)),
            root_dir=tmp_path,
            node_ip="127.0.0.1",
            recorder=recorder,
            pods=pods,
        )
        await nursery.start(manager.run)

        async def reported() -> Obj | None:
            pod = await get(api)
            return pod if pod and pod["status"].get("reason") == "NoRuntime" else None

        pod = await eventually(reported)
        nursery.cancel_scope.cancel()
    assert pod["status"]["phase"] == "Pending"
    assert "workload type container" in pod["status"]["message"]
    assert fake.sandbox_ids == []


def exec_probe(**fields: Any) -> Obj:
    return {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1, **fields}


async def test_a_failed_liveness_probe_restarts_the_container(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    healthy = {"yes": True}
    fake.exec_handler = lambda cid, cmd: ExecResult(b"", b"", 0 if healthy["yes"] else 1)
    containers = [
        {
            "name": "app",
            "image": "present:1",
            "command": ["sleep", "infinity"],
            "livenessProbe": exec_probe(),
        }
    ]
    await create(api, pod_object(containers=containers))
    async with agent.manager():
        await eventually(lambda: _ready(api))
        healthy["yes"] = False

        async def restarted() -> Obj | None:
            entry = state_of(await get(api))
            return entry if entry.get("restartCount") == 1 else None

        entry = await eventually(restarted, timeout=6)
        healthy["yes"] = True
    assert entry["lastState"]["terminated"]["exitCode"] in (137, 143)


async def test_readiness_follows_the_probe(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    ready = {"yes": False}
    fake.exec_handler = lambda cid, cmd: ExecResult(b"", b"", 0 if ready["yes"] else 1)
    containers = [
        {
            "name": "app",
            "image": "present:1",
            "command": ["sleep", "infinity"],
            "readinessProbe": exec_probe(),
        }
    ]
    await create(api, pod_object(containers=containers))
    async with agent.manager():

        async def condition(status: str) -> Obj | None:
            pod = await get(api)
            conditions = {c["type"]: c for c in (pod or {}).get("status", {}).get("conditions", ())}
            found = conditions.get("Ready")
            return pod if found and found["status"] == status else None

        pod = await eventually(phase_is(api, "Running"))
        assert state_of(pod)["ready"] is False
        await eventually(lambda: condition("False"))
        ready["yes"] = True
        pod = await eventually(lambda: condition("True"), timeout=4)
    assert state_of(pod)["ready"] is True
    assert state_of(pod)["restartCount"] == 0


async def test_termination_message_is_reported(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    await create(api, pod_object(policy="Never"))
    async with agent.manager():
        await eventually(lambda: _ready(api))
        [container_id] = running_ids(fake)
        fake.exit(container_id, 4, message="disk full")
        pod = await eventually(phase_is(api, "Failed"))
    terminated = state_of(pod)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (4, "disk full")


async def test_env_and_volumes_reach_the_runtime(
    api: client.Client, agent: Agent, fake: FakeRuntime
) -> None:
    await api.create(
        CONFIGMAPS,
        {"metadata": {"name": "settings"}, "data": {"greeting": "hello", "file.txt": "x"}},
        namespace="default",
    )
    containers = [
        {
            "name": "app",
            "image": "present:1",
            "command": ["echo", "$(GREETING)", "$(POD)"],
            "env": [
                {
                    "name": "GREETING",
                    "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
                },
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
        }
    ]
    volumes = [{"name": "config", "configMap": {"name": "settings"}}]
    await create(api, pod_object(containers=containers, volumes=volumes))
    async with agent.manager():
        await eventually(lambda: _ready(api))
    [container_id] = fake.container_ids
    config = fake._containers[container_id].config
    assert list(config.command) == ["echo", "hello", "web"]
    envs = {kv.key: kv.value for kv in config.envs}
    assert envs["GREETING"] == "hello"
    [mount] = config.mounts
    assert mount.container_path == "/etc/app"
    assert (Path(mount.host_path) / "file.txt").read_text() == "x"


async def test_a_vm_pod_runs_one_container_carrying_the_vm_spec(
    api: client.Client, fake: FakeRuntime, tmp_path: Path
) -> None:
    vm = {
        "name": "vm1",
        "image": "cirros:0.5",
        "publicKey": "ssh-ed25519 AAAA k1@example",
        "resources": {"limits": {"cpu": "1"}},
    }
    pod = pod_object(containers=[], virtualMachine=vm)
    del pod["spec"]["containers"]
    await create(api, pod)
    async with trio.open_nursery() as nursery:
        informers = machinery.InformerFactory(api)
        pods = informers.informer(PODS, field_selector=f"spec.nodeName={NODE}")
        recorder = machinery.EventRecorder(api, component="agent-tests")
        await nursery.start(recorder.run)
        await nursery.start(informers.run)
        manager = PodManager(
            api,
            node_name=NODE,
            runtimes=RuntimeSet((NamedRuntime("vms", WorkloadType.VM, fake),)),
            root_dir=tmp_path,
            node_ip="127.0.0.1",
            recorder=recorder,
            pods=pods,
            relist_interval=0.05,
        )
        await nursery.start(manager.run)
        await eventually(phase_is(api, "Running"))
        nursery.cancel_scope.cancel()
    [container_id] = fake.container_ids
    config = fake._containers[container_id].config
    assert config.metadata.name == "vm1"
    assert config.image.image == "cirros:0.5"
    assert '"name":"vm1"' in config.annotations[podconfig.VIRTUAL_MACHINE]
