"""Pod status as kubelet reports it, from what the agent observed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.agent import _status as status
from arktos_lite.agent._status import ContainerState as S, ContainerView, Instance, PodView

Obj = dict[str, Any]
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def running(id_: str = "c1", restarts: int = 0) -> Instance:
    return Instance(id=id_, state=S.RUNNING, restart_count=restarts, started_at=10**18)


def exited(code: int, id_: str = "c1", restarts: int = 0, reason: str = "") -> Instance:
    return Instance(
        id=id_,
        state=S.EXITED,
        restart_count=restarts,
        started_at=10**18,
        finished_at=10**18 + 5 * 10**9,
        exit_code=code,
        reason=reason,
    )


def pod(
    containers: tuple[str, ...] = ("app",),
    init: tuple[str, ...] = (),
    policy: str = "Always",
    **spec: Any,
) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {
            "restartPolicy": policy,
            "containers": [{"name": n, "image": "busybox"} for n in containers],
            "initContainers": [{"name": n, "image": "busybox"} for n in init],
            **spec,
        },
        "status": {},
    }


def view(
    containers: dict[str, ContainerView] | None = None,
    init: dict[str, ContainerView] | None = None,
    *,
    sandbox: bool = True,
) -> PodView:
    return PodView(
        runtime_name="fake",
        host_ip="192.0.2.1",
        pod_ips=("10.88.0.2",) if sandbox else (),
        sandbox_ready=sandbox,
        init_containers=init or {},
        containers=containers or {},
    )


def cv(
    current: Instance | None = None, previous: Instance | None = None, **kwargs: Any
) -> ContainerView:
    return ContainerView(current=current, previous=previous, **kwargs)


# Phase, table-driven after kubelet's getPhase.

PHASES: list[tuple[str, dict[str, ContainerView], dict[str, ContainerView], str]] = [
    # (policy, app container views, init views, expected phase)
    ("Always", {}, {}, "Pending"),
    ("Always", {"app": cv(running(), ready=True)}, {}, "Running"),
    ("Always", {"app": cv(exited(0))}, {}, "Running"),
    ("Always", {"app": cv(exited(1))}, {}, "Running"),
    ("Never", {"app": cv(exited(0))}, {}, "Succeeded"),
    ("Never", {"app": cv(exited(2))}, {}, "Failed"),
    ("OnFailure", {"app": cv(exited(0))}, {}, "Succeeded"),
    ("OnFailure", {"app": cv(exited(1))}, {}, "Running"),
    # Waiting in back-off after a termination counts as stopped.
    ("Always", {"app": cv(None, exited(1), waiting_reason="CrashLoopBackOff")}, {}, "Running"),
    ("Always", {"app": cv(Instance(id="c", state=S.CREATED))}, {}, "Pending"),
]


@pytest.mark.parametrize(("policy", "apps", "inits", "expected"), PHASES)
def test_phase(
    policy: str, apps: dict[str, ContainerView], inits: dict[str, ContainerView], expected: str
) -> None:
    spec = pod(policy=policy)["spec"]
    assert status.phase(spec, view(apps, inits)) == expected


def test_phase_with_two_containers() -> None:
    spec = pod(("a", "b"), policy="Never")["spec"]
    assert status.phase(spec, view({"a": cv(running()), "b": cv(exited(1))})) == "Running"
    assert status.phase(spec, view({"a": cv(exited(0)), "b": cv(exited(1))})) == "Failed"
    assert status.phase(spec, view({"a": cv(exited(0)), "b": cv(exited(0))})) == "Succeeded"
    assert status.phase(spec, view({"a": cv(exited(0))})) == "Pending"


INIT_PHASES: list[tuple[str, dict[str, ContainerView], str]] = [
    ("Always", {}, "Pending"),
    ("Always", {"i1": cv(running())}, "Pending"),
    ("Always", {"i1": cv(exited(0))}, "Pending"),  # i2 not run yet
    ("Always", {"i1": cv(exited(0)), "i2": cv(exited(1))}, "Pending"),
    ("Never", {"i1": cv(exited(0)), "i2": cv(exited(1))}, "Failed"),
    ("Never", {"i1": cv(exited(1))}, "Failed"),
    ("Always", {"i1": cv(exited(0)), "i2": cv(exited(0))}, "Running"),
]


@pytest.mark.parametrize(("policy", "inits", "expected"), INIT_PHASES)
def test_phase_with_init_containers(
    policy: str, inits: dict[str, ContainerView], expected: str
) -> None:
    spec = pod(init=("i1", "i2"), policy=policy)["spec"]
    apps = {"app": cv(running())} if expected == "Running" else {}
    assert status.phase(spec, view(apps, inits)) == expected


# Container statuses


def test_running_container_status() -> None:
    spec = {"name": "app", "image": "busybox"}
    entry = status.container_status(
        spec,
        cv(running("abc", restarts=2), exited(1, "old", 1), ready=True, started=True),
        runtime_name="fake",
    )
    assert entry["containerID"] == "fake://abc"
    assert entry["restartCount"] == 2
    assert entry["ready"] is True
    assert entry["started"] is True
    assert entry["state"] == {"running": {"startedAt": status.rfc3339(10**18)}}
    last = entry["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"], last["containerID"]) == (1, "Error", "fake://old")


def test_crash_loop_status() -> None:
    spec = {"name": "app", "image": "busybox"}
    message = "back-off 10s restarting failed container=app pod=web_default(u1)"
    entry = status.container_status(
        spec,
        cv(exited(3, "c2", 1), waiting_reason="CrashLoopBackOff", waiting_message=message),
        runtime_name="fake",
    )
    assert entry["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    assert entry["lastState"]["terminated"]["exitCode"] == 3
    assert entry["restartCount"] == 1
    assert entry["ready"] is False


def test_terminated_status_carries_message_and_reason() -> None:
    spec = {"name": "app", "image": "busybox"}
    instance = Instance(
        id="c", state=S.EXITED, exit_code=137, reason="OOMKilled", message="bye", finished_at=1
    )
    entry = status.container_status(spec, cv(instance), runtime_name="fake")
    terminated = entry["state"]["terminated"]
    assert (terminated["reason"], terminated["message"], terminated["exitCode"]) == (
        "OOMKilled",
        "bye",
        137,
    )
    completed = status.container_status(spec, cv(exited(0)), runtime_name="fake")
    assert completed["state"]["terminated"]["reason"] == "Completed"


def test_not_started_container_waits() -> None:
    spec = {"name": "app", "image": "busybox"}
    entry = status.container_status(spec, cv(), runtime_name="fake")
    assert entry["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert "containerID" not in entry
    init_pending = status.pod_status(pod(init=("i1",)), view({}, {"i1": cv(running())}), now=NOW)
    assert init_pending["containerStatuses"][0]["state"]["waiting"]["reason"] == ("PodInitializing")


# Conditions


def conditions_by_type(pod_status: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in pod_status["conditions"]}


def test_ready_pod_conditions() -> None:
    new = status.pod_status(pod(), view({"app": cv(running(), ready=True, started=True)}), now=NOW)
    found = conditions_by_type(new)
    for type_ in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
        assert found[type_]["status"] == "True", type_
    assert found["PodScheduled"]["status"] == "True"
    assert new["phase"] == "Running"
    assert new["podIP"] == "10.88.0.2"
    assert new["podIPs"] == [{"ip": "10.88.0.2"}]
    assert new["hostIP"] == "192.0.2.1"
    assert new["startTime"] == NOW
    assert new["qosClass"] == "BestEffort"


def test_unready_container_conditions() -> None:
    new = status.pod_status(pod(("a", "b")), view({"a": cv(running(), ready=True)}), now=NOW)
    found = conditions_by_type(new)
    assert found["ContainersReady"]["status"] == "False"
    assert found["ContainersReady"]["reason"] == "ContainersNotReady"
    assert found["Ready"]["message"] == "containers with unready status: [b]"


def test_init_condition() -> None:
    new = status.pod_status(pod(init=("i1", "i2")), view({}, {"i1": cv(exited(0))}), now=NOW)
    initialized = conditions_by_type(new)["Initialized"]
    assert initialized["status"] == "False"
    assert initialized["message"] == "containers with incomplete status: [i2]"
    assert [s["name"] for s in new["initContainerStatuses"]] == ["i1", "i2"]


def test_readiness_gates() -> None:
    gated = pod(readinessGates=[{"conditionType": "example.com/lb"}])
    ok = view({"app": cv(running(), ready=True)})
    found = conditions_by_type(status.pod_status(gated, ok, now=NOW))
    assert found["Ready"]["status"] == "False"
    assert found["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert found["ContainersReady"]["status"] == "True"
    gated["status"] = {"conditions": [{"type": "example.com/lb", "status": "True"}]}
    found = conditions_by_type(status.pod_status(gated, ok, now=NOW))
    assert found["Ready"]["status"] == "True"
    # The gate's own condition is kept as it is.
    assert found["example.com/lb"] == {"type": "example.com/lb", "status": "True"}


def test_completed_pod_is_not_ready() -> None:
    new = status.pod_status(pod(policy="Never"), view({"app": cv(exited(0))}), now=NOW)
    assert new["phase"] == "Succeeded"
    assert conditions_by_type(new)["Ready"]["reason"] == "PodCompleted"


def test_transition_times_kept_while_status_stays() -> None:
    subject = pod()
    first = status.pod_status(subject, view({"app": cv(running(), ready=True)}), now=NOW)
    subject["status"] = first
    again = status.pod_status(subject, view({"app": cv(running(), ready=True)}), now=LATER)
    assert again == first
    assert not status.differs(first, again)
    subject["status"] = again
    unready = status.pod_status(subject, view({"app": cv(running(), ready=False)}), now=LATER)
    found = conditions_by_type(unready)
    assert found["Ready"]["lastTransitionTime"] == LATER
    assert found["Initialized"]["lastTransitionTime"] == NOW
    assert unready["startTime"] == NOW
    assert status.differs(again, unready)


def test_terminal_phase_sticks() -> None:
    subject = pod(policy="Never")
    subject["status"] = {"phase": "Failed"}
    # Even if the runtime later shows a running container (it should not), Failed stays.
    again = status.pod_status(subject, view({"app": cv(running())}), now=NOW)
    assert again["phase"] == "Failed"


def test_fields_of_others_are_kept_and_patch_sets_ours() -> None:
    subject = pod()
    subject["status"] = {"nominatedNodeName": "n2", "reason": "Old"}
    new = status.pod_status(subject, view(), now=NOW)
    assert new["nominatedNodeName"] == "n2"
    patch = status.status_patch(subject["status"], new)
    assert patch["reason"] is None
    assert "nominatedNodeName" not in patch
    assert patch["phase"] == "Pending"


# QoS


def resources(requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    result: Obj = {}
    if requests is not None:
        result["requests"] = requests
    if limits is not None:
        result["limits"] = limits
    return {"name": "c", "resources": result}


QOS = [
    ([resources()], "BestEffort"),
    ([resources({"cpu": "100m"})], "Burstable"),
    ([resources(None, {"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([resources({"cpu": "1000m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([resources({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], "Burstable"),
    ([resources(None, {"cpu": "1"})], "Burstable"),
    ([resources(None, {"cpu": "1", "memory": "1Gi"}), resources()], "Burstable"),
]


@pytest.mark.parametrize(("containers", "expected"), QOS)
def test_qos_class(containers: list[Obj], expected: str) -> None:
    assert status.qos_class({"containers": containers}) == expected


# Properties

states = st.sampled_from(list(S))
instances = st.builds(
    Instance,
    id=st.text("abc", min_size=1, max_size=3),
    state=states,
    restart_count=st.integers(0, 5),
    started_at=st.integers(0, 2 * 10**18),
    finished_at=st.integers(0, 2 * 10**18),
    exit_code=st.integers(0, 255),
)
views = st.builds(
    ContainerView,
    current=st.none() | instances,
    previous=st.none() | instances,
    waiting_reason=st.sampled_from(["", "CrashLoopBackOff", "ErrImagePull"]),
    ready=st.booleans(),
    started=st.booleans(),
)


@given(
    policy=st.sampled_from(["Always", "OnFailure", "Never"]),
    apps=st.dictionaries(st.sampled_from(["a", "b"]), views),
    inits=st.dictionaries(st.sampled_from(["i"]), views),
)
def test_status_is_stable_and_well_formed(
    policy: str, apps: dict[str, ContainerView], inits: dict[str, ContainerView]
) -> None:
    subject = pod(("a", "b"), init=("i",), policy=policy)
    observed = view(apps, inits)
    first = status.pod_status(subject, observed, now=NOW)
    assert first["phase"] in {p.value for p in status.Phase}
    for entry in [*first["containerStatuses"], *first["initContainerStatuses"]]:
        assert len(entry["state"]) == 1
        assert entry["ready"] is False or "running" in entry["state"]
    ready = conditions_by_type(first)["Ready"]["status"]
    if ready == "True":
        assert first["phase"] == "Running"
    subject["status"] = first
    assert status.pod_status(subject, observed, now=LATER) == first
    # Once terminal, always terminal, whatever the runtime says next.
    if first["phase"] in status.TERMINAL_PHASES:
        later = status.pod_status(subject, view({"a": cv(running())}), now=LATER)
        assert later["phase"] == first["phase"]


def test_rfc3339() -> None:
    assert status.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert status.rfc3339(1_700_000_000_500_000_000) == "2023-11-14T22:13:20Z"


def test_a_finished_pod_keeps_statuses_the_runtime_forgot() -> None:
    subject = pod(policy="Never")
    first = status.pod_status(subject, view({"app": cv(exited(0))}), now=NOW)
    subject["status"] = first
    # After an agent restart the runtime has nothing of the pod any more.
    again = status.pod_status(subject, view({}, sandbox=False), now=LATER)
    assert again["phase"] == "Succeeded"
    assert again["containerStatuses"] == first["containerStatuses"]
    assert again["podIP"] == first["podIP"]


def vm_condition(vm: status.VmView) -> Obj:
    subject = pod(("vm",))
    found = status.pod_status(
        subject,
        PodView(
            runtime_name="vms",
            host_ip="192.0.2.1",
            sandbox_ready=True,
            containers={"vm": ContainerView(current=running(), ready=True, started=True)},
            vm=vm,
        ),
        now=NOW,
    )
    [condition] = [c for c in found["conditions"] if c["type"] == "VirtualMachineReady"]
    return {**condition, "vmStatus": found["virtualMachineStatus"]}


def test_the_vm_condition_carries_the_vms_state_and_problem() -> None:
    ready = vm_condition(
        status.VmView(name="vm", image="cirros", state="active", power_state="running")
    )
    assert ready["status"] == "True"
    assert "message" not in ready
    assert "message" not in ready["vmStatus"]

    paused = vm_condition(status.VmView(name="vm", image="i", state="paused", power_state="paused"))
    assert (paused["status"], paused["reason"]) == ("False", "VirtualMachineNotReady")
    assert paused["message"] == "virtual machine is paused, power state paused"
    assert paused["vmStatus"]["ready"] is False

    waiting = vm_condition(
        status.VmView(
            name="vm",
            image="i",
            reason="CreateContainerConfigError",
            message='key pair "k" not found',
        )
    )
    assert (waiting["status"], waiting["reason"]) == ("False", "CreateContainerConfigError")
    assert waiting["message"] == (
        'virtual machine is building, power state nostate: key pair "k" not found'
    )

    # A running VM with something to say: still ready, and it says it.
    refused = vm_condition(
        status.VmView(
            name="vm",
            image="i",
            state="active",
            power_state="running",
            reason="ResizeFailed",
            message="cannot grow",
        )
    )
    assert (refused["status"], refused["reason"], refused["message"]) == (
        "True",
        "ResizeFailed",
        "cannot grow",
    )
    assert refused["vmStatus"]["message"] == "cannot grow"
