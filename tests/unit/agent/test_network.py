"""The agent's pod networking when it is off, and the Node condition it adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from arktos_lite import client, machinery
from arktos_lite.agent import _network as podnetwork, _node as node
from arktos_lite.agent._runtimes import NamedRuntime, WorkloadType
from arktos_lite.runtime._fake import FakeRuntime

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
    assert not podnetwork.wants_pod_network({"spec": {"virtualMachine": {"name": "vm"}}})


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
