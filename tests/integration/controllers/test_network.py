"""The network controller against a real API server and a Mizar gRPC server on loopback.

Every tenant gets its flat `default` Network, Ready; a mizar Network gets its Mizar Vpc
and Subnet (and their shared CRDs); pods on it are annotated and Mizar hears CreatePod,
UpdatePod and DeletePod, retried on temporary errors, reported on permanent ones; a pod
naming a Network that does not exist is told so.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
import trio

from arktos_lite import client, machinery
from arktos_lite.api import resources
from arktos_lite.controllers import (
    _namespace as namespace,
    _network as network,
    _tenant as tenant,
)
from arktos_lite.network.mizar import builtins_pb2 as pb, builtins_pb2_grpc as pb_grpc

from .conftest import (
    CONFIGMAPS,
    EVENTS,
    PODS,
    SERVICE_ACCOUNTS,
    TENANTS,
    Controllers,
    eventually,
    exists,
)

Obj = dict[str, Any]

NETWORKS = network.NETWORKS
CRDS = network.CRDS


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    name: str
    tenant: str
    namespace: str
    network: str
    annotations: dict[str, str]
    labels: str


class Mizar(pb_grpc.BuiltinsServiceServicer):
    """A Mizar BuiltinsService that records pod calls and answers from a script.

    `script[method]` is a list of answers used up in order, then OK: "temp" (TEMP_ERROR),
    "perm" (PERM_ERROR), "unavailable" (gRPC status UNAVAILABLE) or "ok".
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.script: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _answer(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls.append(
                Call(
                    method=method,
                    name=request.name,
                    tenant=request.tenant,
                    namespace=request.namespace,
                    network=request.arktos_network,
                    annotations=dict(request.annotations),
                    labels=request.labels,
                )
            )
            queued = self.script.get(method) or []
            answer = queued.pop(0) if queued else "ok"
        if answer == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "Mizar is restarting")
        if answer == "temp":
            return pb.ReturnCode(code=pb.TEMP_ERROR, message="try later")
        if answer == "perm":
            return pb.ReturnCode(code=pb.PERM_ERROR, message="no such subnet")
        return pb.ReturnCode(code=pb.OK)

    def CreatePod(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("CreatePod", request, context)

    def UpdatePod(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("UpdatePod", request, context)

    def DeletePod(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("DeletePod", request, context)

    def of(self, name: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.name == name]


@dataclasses.dataclass
class MizarServer:
    service: Mizar
    target: str


@pytest.fixture
def mizar_server() -> Iterator[MizarServer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service = Mizar()
    pb_grpc.add_BuiltinsServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield MizarServer(service=service, target=f"127.0.0.1:{port}")
    finally:
        server.stop(None)


@pytest.fixture
async def running(
    api: client.Client,
    informers: machinery.InformerFactory,
    recorder: machinery.EventRecorder,
    controllers: Controllers,
) -> Controllers:
    await controllers.start(
        tenant.TenantController(api, informers, recorder=recorder),
        namespace.NamespaceController(api, informers, recorder=recorder),
        network.NetworkController(api, informers, recorder=recorder, mizar_timeout=1.0),
    )
    return controllers


def pod(name: str, *, net: str | None = None) -> Obj:
    labels = {"app": "web"}
    if net is not None:
        labels[network.NETWORK_LABEL] = net
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


async def phase_of(api: client.Client, name: str, *, tenant: str) -> str | None:
    found = await exists(api, NETWORKS, name, tenant=tenant)
    return ((found or {}).get("status") or {}).get("phase")


async def events_for(api: client.Client, name: str, *, tenant: str, reason: str) -> list[Obj]:
    listed = await api.list_all(EVENTS, namespace="default", tenant=tenant)
    return [
        e
        for e in listed["items"]
        if e.get("reason") == reason and (e.get("involvedObject") or {}).get("name") == name
    ]


async def make_tenant(api: client.Client, name: str) -> None:
    """A tenant, once its namespace `default` can hold pods."""
    await api.create(TENANTS, {"metadata": {"name": name}})
    await eventually(
        lambda: exists(api, SERVICE_ACCOUNTS, "default", tenant=name, namespace="default")
    )


async def test_every_tenant_gets_a_ready_flat_default_network(
    api: client.Client, running: Controllers
) -> None:
    await make_tenant(api, "t1")
    for name in ("t1", resources.SYSTEM_TENANT):
        assert await eventually(lambda n=name: phase_of(api, "default", tenant=n)) == "Ready"
        found = await api.get(NETWORKS, "default", tenant=name)
        assert found["spec"] == {"type": "flat"}
    # One that goes missing comes back.
    await api.delete(NETWORKS, "default", tenant="t1")
    assert await eventually(lambda: phase_of(api, "default", tenant="t1")) == "Ready"
    # A vpc network has nobody to make it ready here, and says so.
    await api.create(
        NETWORKS, {"metadata": {"name": "v"}, "spec": {"type": "vpc", "vpcID": "x"}}, tenant="t1"
    )
    assert await eventually(lambda: phase_of(api, "v", tenant="t1")) == "Pending"


async def test_a_pod_on_a_missing_network_is_told_so(
    api: client.Client, running: Controllers
) -> None:
    await make_tenant(api, "t1")
    await api.create(PODS, pod("lost", net="nowhere"), tenant="t1", namespace="default")
    events = await eventually(
        lambda: events_for(api, "lost", tenant="t1", reason="NetworkNotFound")
    )
    assert events[0]["type"] == "Warning"
    assert "nowhere" in events[0]["message"]


async def test_mizar_networks_get_vpc_and_subnet_and_pods_are_told_to_mizar(
    api: client.Client, running: Controllers, mizar_server: MizarServer
) -> None:
    mizar = mizar_server.service
    await make_tenant(api, "t1")
    await eventually(lambda: exists(api, NETWORKS, "default", tenant="t1"))
    await api.create(
        NETWORKS,
        {"metadata": {"name": "mnet"}, "spec": {"type": "mizar", "vpcID": "vpc1"}},
        tenant="t1",
    )
    assert await eventually(lambda: phase_of(api, "mnet", tenant="t1"), timeout=10) == "Ready"

    # The CRDs are the system tenant's, shared with every tenant.
    for crd_name in ("vpcs.mizar.com", "subnets.mizar.com"):
        crd = await api.get(CRDS, crd_name, tenant=resources.SYSTEM_TENANT)
        assert crd["metadata"]["labels"][network.SHARING_LABEL] == "forced"
    vpc = await api.get(network.VPCS, "vpc1", tenant="t1", namespace="default")
    subnet = await api.get(network.SUBNETS, "vpc1-subnet", tenant="t1", namespace="default")
    assert {k: vpc["spec"][k] for k in ("ip", "prefix")} == {"ip": "21.0.0.0", "prefix": "16"}
    assert subnet["spec"]["vpc"] == "vpc1"
    assert subnet["spec"]["vni"] == vpc["spec"]["vni"] != ""
    assert subnet["spec"]["bouncers"] == 1
    assert (subnet["spec"]["ip"], subnet["spec"]["prefix"]) == ("21.0.21.0", "24")

    # Without Mizar's address the pod is annotated and waits.
    mizar.script["CreatePod"] = ["unavailable", "temp", "ok"]
    await api.create(PODS, pod("web", net="mnet"), tenant="t1", namespace="default")

    async def annotations() -> dict[str, str] | None:
        found = await api.get(PODS, "web", tenant="t1", namespace="default")
        got: dict[str, str] = found["metadata"].get("annotations") or {}
        return got if network.VPC_ANNOTATION in got else None

    got = await eventually(annotations)
    assert got[network.VPC_ANNOTATION] == "vpc1"
    assert got[network.SUBNET_ANNOTATION] == "vpc1-subnet"
    await trio.sleep(0.2)
    assert mizar.of("web") == []

    # Mizar's address arrives: CreatePod, retried through two temporary failures.
    await api.create(
        CONFIGMAPS,
        {
            "metadata": {"name": "mizar-grpc-service"},
            "data": {"host": mizar_server.target},
        },
        tenant=resources.SYSTEM_TENANT,
        namespace="default",
    )
    calls = await eventually(lambda: [c for c in mizar.of("web") if c.method == "CreatePod"][2:])
    created = mizar.of("web")[:3]
    assert [c.method for c in created] == ["CreatePod"] * 3
    last = created[-1]
    assert (last.tenant, last.namespace, last.network) == ("t1", "default", "mnet")
    assert last.annotations[network.VPC_ANNOTATION] == "vpc1"
    assert last.annotations[network.SUBNET_ANNOTATION] == "vpc1-subnet"
    assert '"app": "web"' in last.labels
    assert calls

    # A change of the pod is an UpdatePod; a permanent error becomes an event.
    mizar.script["UpdatePod"] = ["perm"]
    await api.patch(
        PODS, "web", {"metadata": {"labels": {"tier": "1"}}}, tenant="t1", namespace="default"
    )
    await eventually(lambda: [c for c in mizar.of("web") if c.method == "UpdatePod"])
    events = await eventually(lambda: events_for(api, "web", tenant="t1", reason="MizarCallFailed"))
    assert events[0]["type"] == "Warning"
    assert "PERM_ERROR" in events[0]["message"]
    await api.patch(
        PODS, "web", {"metadata": {"labels": {"tier": "2"}}}, tenant="t1", namespace="default"
    )
    await eventually(lambda: len([c for c in mizar.of("web") if c.method == "UpdatePod"]) >= 2)

    # Deleting the pod is a DeletePod (retried once Mizar is back), the last call Mizar
    # hears of it.
    mizar.script["DeletePod"] = ["unavailable"]
    await api.delete(PODS, "web", tenant="t1", namespace="default", grace_period_seconds=0)
    await eventually(lambda: [c for c in mizar.of("web") if c.method == "DeletePod"][1:])
    await trio.sleep(0.2)
    assert [c.method for c in mizar.of("web")[-2:]] == ["DeletePod", "DeletePod"]
    assert mizar.of("web")[-1].annotations[network.VPC_ANNOTATION] == "vpc1"

    # A pod on the flat default network is none of Mizar's business.
    await api.create(PODS, pod("plain"), tenant="t1", namespace="default")
    await trio.sleep(0.3)
    assert mizar.of("plain") == []
    found = await api.get(PODS, "plain", tenant="t1", namespace="default")
    assert network.VPC_ANNOTATION not in (found["metadata"].get("annotations") or {})


async def test_a_deleted_tenant_goes_with_its_networks(
    api: client.Client, running: Controllers
) -> None:
    await make_tenant(api, "t1")
    await eventually(lambda: phase_of(api, "default", tenant="t1"))
    await api.delete(TENANTS, "t1")

    async def gone() -> bool:
        return await exists(api, TENANTS, "t1") is None

    await eventually(gone, timeout=15)
    listed = await api.list_all(NETWORKS, tenant="t1")
    assert listed["items"] == []


async def test_a_pod_mizar_refuses_is_offered_again_when_it_changes(
    api: client.Client, running: Controllers, mizar_server: MizarServer
) -> None:
    mizar = mizar_server.service
    await api.create(
        CONFIGMAPS,
        {"metadata": {"name": "mizar-grpc-service"}, "data": {"host": mizar_server.target}},
        tenant=resources.SYSTEM_TENANT,
        namespace="default",
    )
    await make_tenant(api, "t1")
    await api.create(NETWORKS, {"metadata": {"name": "m"}, "spec": {"type": "mizar"}}, tenant="t1")
    assert await eventually(lambda: phase_of(api, "m", tenant="t1"), timeout=10) == "Ready"
    mizar.script["CreatePod"] = ["perm"]
    await api.create(PODS, pod("db", net="m"), tenant="t1", namespace="default")
    await eventually(lambda: events_for(api, "db", tenant="t1", reason="MizarCallFailed"))
    # Without the VPC ID the tenant's default VPC is used.
    assert mizar.of("db")[0].annotations == {
        network.VPC_ANNOTATION: "t1-default-network",
        network.SUBNET_ANNOTATION: "t1-default-network-subnet",
    }
    await trio.sleep(0.2)
    assert [c.method for c in mizar.of("db")] == ["CreatePod"]
    await api.patch(
        PODS, "db", {"metadata": {"labels": {"v": "2"}}}, tenant="t1", namespace="default"
    )
    await eventually(lambda: mizar.of("db")[1:])
    await api.patch(
        PODS, "db", {"metadata": {"labels": {"v": "3"}}}, tenant="t1", namespace="default"
    )
    await eventually(lambda: mizar.of("db")[2:])
    assert [c.method for c in mizar.of("db")] == ["CreatePod", "CreatePod", "UpdatePod"]
