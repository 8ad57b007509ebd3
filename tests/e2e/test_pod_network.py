"""Pod networking on `arktos up`'s node (root with the CNI plugins and nft): pods get
addresses from the node's podCIDR in network namespaces of their own, pods of one tenant
reach each other by pod IP and through a Service's ClusterIP, a pod of another tenant
reaches neither, a deleted pod gives its address back, and a `hostNetwork` pod keeps the
node's."""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arktos_lite import network

from .conftest import Cluster, require_tool, running_cluster

pytestmark = pytest.mark.slow

_FETCH = (
    "import sys, urllib.request; "
    "body = urllib.request.urlopen(sys.argv[1], timeout=1).read(); "
    "sys.stdout.write(body.decode())"
)


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"the cluster did not get there in time: {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def netcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tool("kubectl")
    tools, reason = network.detect_tools()
    if tools is None:
        message = f"pod networking needs root, the CNI plugins and nft: {reason}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install containernetworking-plugins and nftables)")
        pytest.skip(message)
    # A cluster CIDR of its own, so that clusters of other test runs do not share routes.
    cidr = f"10.{random.randint(160, 230)}.0.0/16"
    data_dir = tmp_path_factory.mktemp("arktos-net")
    with running_cluster(
        data_dir, "--cluster-cidr", cidr, "--no-vm-runtime", "--pod-network", "on"
    ) as cluster:
        yield cluster


def create(cluster: Cluster, tenant: str, obj: dict[str, Any]) -> None:
    plural = obj["kind"].lower() + "s"
    namespace = obj["metadata"].get("namespace")
    path = f"/api/v1/tenants/{tenant}" + (f"/namespaces/{namespace}" if namespace else "")
    cluster.kubectl("create", "--raw", f"{path}/{plural}", "-f", "-", input=json.dumps(obj))


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    result = cluster.run_kubectl("get", "--raw", path)
    return json.loads(result.stdout) if result.returncode == 0 else None


def pod(name: str, command: list[str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "host", "command": command}],
        },
    }


def running(cluster: Cluster, tenant: str, name: str) -> dict[str, Any] | None:
    found = get(cluster, f"/api/v1/tenants/{tenant}/namespaces/default/pods/{name}")
    status = (found or {}).get("status") or {}
    return found if status.get("phase") == "Running" and status.get("podIP") else None


def fetch_from(pod_obj: dict[str, Any], url: str) -> str | None:
    """`url` fetched inside the pod's network namespace; None when unreachable."""
    netns = network.netns_name(pod_obj["metadata"]["uid"])
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _FETCH, url],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


def test_pods_of_a_tenant_reach_each_other_and_their_services_only(
    netcluster: Cluster, tmp_path: pathlib.Path
) -> None:
    cluster = netcluster
    cluster.kubectl(
        "create", "-f", "-", input="apiVersion: v1\nkind: Tenant\nmetadata:\n  name: netb\n"
    )
    eventually(lambda: get(cluster, "/api/v1/tenants/netb/namespaces/default"), what="tenant netb")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from web")
    server = [sys.executable, "-m", "http.server", "8080", "--directory", str(www)]
    create(cluster, "system", pod("web", server, {"app": "web"}))
    create(cluster, "system", pod("client", ["sleep", "3600"]))
    create(cluster, "netb", pod("stranger", ["sleep", "3600"]))
    on_host = pod("on-host", ["sleep", "3600"])
    on_host["spec"]["hostNetwork"] = True
    create(cluster, "system", on_host)
    create(
        cluster,
        "system",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    web = eventually(lambda: running(cluster, "system", "web"), what="web running")
    client = eventually(lambda: running(cluster, "system", "client"), what="client running")
    stranger = eventually(lambda: running(cluster, "netb", "stranger"), what="stranger running")
    host_pod = eventually(lambda: running(cluster, "system", "on-host"), what="on-host running")
    # hostNetwork: the node's namespace and address.
    assert host_pod["status"]["podIP"] == host_pod["status"]["hostIP"]
    assert not pathlib.Path("/run/netns", network.netns_name(host_pod["metadata"]["uid"])).exists()

    node = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"][0]
    pod_cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
    ips = {p["status"]["podIP"] for p in (web, client, stranger)}
    assert len(ips) == 3
    assert all(ipaddress.ip_address(ip) in pod_cidr for ip in ips)
    assert web["status"]["podIPs"] == [{"ip": web["status"]["podIP"]}]
    conditions = {c["type"]: c for c in node["status"]["conditions"]}
    assert conditions["NetworkUnavailable"]["status"] == "False"
    assert conditions["NetworkUnavailable"]["reason"] == "PodNetworkReady"

    by_ip = f"http://{web['status']['podIP']}:8080/"
    assert eventually(lambda: fetch_from(client, by_ip), what="web by pod IP") == "hello from web"
    assert fetch_from(stranger, by_ip) is None

    service = get(cluster, "/api/v1/namespaces/default/services/web")
    assert service is not None
    by_cluster_ip = f"http://{service['spec']['clusterIP']}:80/"
    assert (
        eventually(lambda: fetch_from(client, by_cluster_ip), what="web by ClusterIP")
        == "hello from web"
    )
    assert fetch_from(stranger, by_cluster_ip) is None

    # Deleting a pod releases its address and namespace.
    ipam = cluster.data_dir / "agent" / "network" / "ipam"
    client_ip = client["status"]["podIP"]
    assert list(ipam.glob(f"*/{client_ip}"))
    cluster.kubectl("delete", "pod", "client", "--wait=true", "--timeout=30s")
    eventually(lambda: not list(ipam.glob(f"*/{client_ip}")), what="client's address released")
    netns = pathlib.Path("/run/netns", network.netns_name(client["metadata"]["uid"]))
    eventually(lambda: not netns.exists(), what="client's netns removed")
