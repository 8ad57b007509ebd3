"""The agent's pod networking when it is off, and the Node condition it adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from arktos_lite import client, machinery, network, runtime
from arktos_lite.agent import _network as podnetwork, _node as node
from arktos_lite.agent._runtimes import NamedRuntime, WorkloadType
from arktos_lite.runtime._fake import FakeRuntime
from arktos_lite.runtime.cri import api_pb2 as cri
from arktos_lite.runtime.vm import _domain

from .test_node import CONTAINER_OK, HOST, ROOMY


def _off(tmp_path: Path) -> podnetwork.PodNetworking:
    api = cast(client.Client, object())
    return podnetwork.PodNetworking(
        api,
        node_name="n1",
        root_dir=tmp_path,
        informers=machinery.InformerFactory(api),
        enabled=False,
    )


def test_which_pods_get_a_network_of_their_own() -> None:
    assert podnetwork.wants_pod_network({"spec": {"containers": [{}]}})
    assert not podnetwork.wants_pod_network({"spec": {"hostNetwork": True}})
    vm = {"spec": {"virtualMachine": {"name": "vm"}}}
    assert podnetwork.wants_pod_network(vm)
    assert podnetwork.is_vm(vm)
    assert not podnetwork.is_vm({"spec": {"containers": [{}]}})


def test_the_runtime_is_told_the_namespace_or_the_guests_nic() -> None:
    key = network.NetworkKey("t")
    pod = network.Attachment("u1", key, "/run/netns/arktos-u1", ("10.1.0.2",), "arktosa")
    assert podnetwork.sandbox_annotations(pod) == {
        runtime.POD_NETNS: "/run/netns/arktos-u1",
        runtime.POD_IPS: "10.1.0.2",
    }
    guest = network.Attachment(
        "u2", key, "", ("10.1.0.3",), "arktosa", mac="0a:58:0a:01:00:03", subnet="10.1.0.0/27"
    )
    annotations = podnetwork.sandbox_annotations(guest)
    assert annotations[runtime.POD_IPS] == "10.1.0.3"
    assert runtime.POD_NETNS not in annotations
    # What the agent writes is what the VM runtime reads.
    assert _domain.parse_pod_nic(annotations[runtime.POD_NIC]) == _domain.PodNic(
        bridge="arktosa", mac="0a:58:0a:01:00:03", address="10.1.0.3/27", gateway="10.1.0.1"
    )


def test_off_means_host_network_said_on_the_node(tmp_path: Path) -> None:
    networking = _off(tmp_path)
    assert networking.backend is None
    condition = networking.condition()
    assert condition == node.Condition(
        "NetworkUnavailable",
        node.ConditionStatus.FALSE,
        "HostNetwork",
        "pods share the node's network: pod networking disabled",
    )
    observed = node.Observed(HOST, ROOMY, (CONTAINER_OK,), (condition,))
    status = node.node_status(
        {}, observed, node_name="n1", node_ip="10.0.0.1", port=1, max_pods=5, now="T"
    )
    found = {c["type"]: c for c in status["conditions"]}["NetworkUnavailable"]
    assert (found["status"], found["reason"]) == ("False", "HostNetwork")


async def test_off_attaches_nothing(tmp_path: Path) -> None:
    networking = _off(tmp_path)
    named = NamedRuntime("fake", WorkloadType.CONTAINER, FakeRuntime())
    pod: dict[str, Any] = {"metadata": {"uid": "u1"}, "spec": {"containers": [{}]}}
    assert await networking.attach(pod, named) is None
    await networking.detach("u1")


def test_a_gone_pods_address_is_released_at_the_second_sweep_only() -> None:
    stale, suspects = podnetwork.sweep({"a", "b", "c"}, known={"a"}, suspects=set())
    assert (stale, suspects) == (set(), {"b", "c"})
    # "c" came back (an informer catching up); "b" is still gone.
    stale, suspects = podnetwork.sweep({"a", "b", "c"}, known={"a", "c"}, suspects=suspects)
    assert (stale, suspects) == ({"b"}, set())


class _InfoRuntime(FakeRuntime):
    """A fake runtime whose verbose Status says what pod networking it honours."""

    def __init__(self, info: dict[str, str]) -> None:
        super().__init__()
        self.info = info

    async def status(self, *, verbose: bool = False) -> cri.StatusResponse:
        response = await super().status(verbose=verbose)
        if verbose:
            response.info.update(self.info)
        return response


class _Backend:
    """Records what it attached (only what `attach` calls)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def attach(self, member: network.Member) -> network.Attachment:
        self.calls.append(("attach", member.uid))
        return network.Attachment(member.uid, member.key, f"/run/netns/{member.uid}", (), "b")

    def attach_guest(self, member: network.Member) -> network.Attachment:
        self.calls.append(("attach_guest", member.uid))
        return network.Attachment(member.uid, member.key, "", (), "b", mac="0a:58:0a:00:00:02")


async def test_vm_pods_get_a_guest_nic_where_the_runtime_plugs_one_in(tmp_path: Path) -> None:
    networking = _off(tmp_path)
    backend = _Backend()
    networking.backend = cast(network.PodNetwork, backend)
    networking._cidr.set()
    vm_runtime = NamedRuntime("vm", WorkloadType.VM, _InfoRuntime({runtime.POD_NIC_INFO: "true"}))
    process = NamedRuntime(
        "process", WorkloadType.CONTAINER, _InfoRuntime({runtime.POD_NETWORK_INFO: "true"})
    )
    vm: dict[str, Any] = {"metadata": {"uid": "v1"}, "spec": {"virtualMachine": {"name": "v"}}}
    container: dict[str, Any] = {"metadata": {"uid": "c1"}, "spec": {"containers": [{}]}}
    attached = await networking.attach(vm, vm_runtime)
    assert attached is not None
    assert attached.guest
    assert (await networking.attach(container, process)) is not None
    # Each kind only where its runtime says it honours it.
    assert await networking.attach(vm, process) is None
    assert await networking.attach(container, vm_runtime) is None
    host_vm = {"metadata": {"uid": "v2"}, "spec": {"virtualMachine": {}, "hostNetwork": True}}
    assert await networking.attach(host_vm, vm_runtime) is None
    assert backend.calls == [("attach_guest", "v1"), ("attach", "c1")]
