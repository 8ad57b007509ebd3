"""`arktos up --partitions 2`: two API server processes, each over its own store (tenants
a-m and n-z; SQLite files, then etcds), with the controllers, the scheduler and the agent
as separate processes routing over both.

A Deployment in each partition's tenant is reconciled by the same controllers and
scheduled onto the one node; a request for a tenant at the wrong partition gets a clear
421; stock kubectl works with one context per partition; `arktos get --all-tenants`
merges both; killing one partition's API server (kill -9) leaves the other partition
working, and once the supervisor has started it again its tenant works too. The
controller manager process gets the cluster CIDR (the node's podCIDR comes from it) and
the Neutron configuration, whose password is on no command line.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Cluster, require_tool, running_cluster
from .test_workloads import eventually

pytestmark = pytest.mark.slow

TENANTS = {"acme": "partition-0", "zeta": "partition-1"}
CLUSTER_CIDR = "10.77.0.0/16"
# Keystone is never reached: no VM pod asks for a Neutron port here.
NEUTRON = (
    "--neutron-auth",
    "password",
    "--keystone-url",
    "http://127.0.0.1:9/v3",
    "--os-username",
    "arktos",
    "--os-password",
    "neutron-s3cret",
    "--os-project-name",
    "service",
)


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The cluster over a SQLite file per partition, then over an etcd per partition."""
    require_tool("kubectl")
    store: tuple[str, ...] = ()
    if request.param == "etcd":
        require_tool("etcd")
        store = ("--store", "etcd")
    data_dir = tmp_path_factory.mktemp(f"partitioned-{request.param}")
    args = ("--partitions", "2", "--cluster-cidr", CLUSTER_CIDR, *NEUTRON, *store)
    with running_cluster(data_dir, *args) as running:
        yield running


def kubectl(cluster: Cluster, context: str, *args: str, input: str | None = None) -> str:
    return cluster.kubectl("--context", context, *args, input=input)


def raw(cluster: Cluster, context: str, path: str) -> Any:
    return json.loads(kubectl(cluster, context, "get", "--raw", path))


def deployment(name: str, tenant: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "tenant": tenant},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}
                    ],
                },
            },
        },
    }


def running_pods(cluster: Cluster, tenant: str, app: str) -> int:
    path = f"/api/v1/tenants/{tenant}/namespaces/default/pods?labelSelector=app%3D{app}"
    result = cluster.run_kubectl("--context", TENANTS[tenant], "get", "--raw", path)
    if result.returncode != 0:
        return -1
    pods = json.loads(result.stdout)["items"]
    return sum(1 for pod in pods if pod.get("status", {}).get("phase") == "Running")


def apply(cluster: Cluster, tenant: str, obj: dict[str, Any]) -> None:
    context = TENANTS[tenant]
    kind = obj["kind"].lower() + "s"
    group = "/apis/apps/v1" if obj["apiVersion"] == "apps/v1" else "/api/v1"
    namespace = obj["metadata"].get("namespace")
    path = f"{group}/tenants/{tenant}" + (f"/namespaces/{namespace}" if namespace else "")
    kubectl(cluster, context, "create", "--raw", f"{path}/{kind}", "-f", "-", input=json.dumps(obj))


def scale(cluster: Cluster, tenant: str, name: str, replicas: int) -> None:
    path = f"/apis/apps/v1/tenants/{tenant}/namespaces/default/deployments/{name}/scale"
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": name, "namespace": "default", "tenant": tenant},
        "spec": {"replicas": replicas},
    }
    kubectl(cluster, TENANTS[tenant], "replace", "--raw", path, "-f", "-", input=json.dumps(body))


def arktos(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arktos_lite", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def apiserver_pid(data_dir: pathlib.Path, partition: str) -> int:
    """The pid of the partition's `arktos apiserver` process."""
    wanted = str(data_dir / "partitions" / partition)
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"apiserver" in argv and wanted.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no API server process for {partition}")


def commands(data_dir: pathlib.Path) -> list[list[str]]:
    """The command lines of the cluster's `arktos` processes (and of the supervisor)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "arktos_lite" in argv and any(str(data_dir) in arg for arg in argv):
            found.append(argv)
    return found


def test_tenants_live_in_their_partitions(cluster: Cluster) -> None:
    partitions = raw(cluster, "partition-0", "/api/v1/datapartitionconfigs")["items"]
    assert [(p["rangeStart"], p["rangeEnd"]) for p in partitions] == [("", "n")]
    for tenant, context in TENANTS.items():
        kubectl(
            cluster,
            context,
            "create",
            "--raw",
            "/api/v1/tenants",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": tenant}}),
        )
    for tenant, context in TENANTS.items():
        eventually(
            lambda t=tenant, c=context: (
                cluster.run_kubectl(
                    "--context", c, "get", "--raw", f"/api/v1/tenants/{t}/namespaces/default"
                ).returncode
                == 0
            ),
            what=f"tenant {tenant}'s default namespace",
        )
    # The wrong partition refuses, naming where the tenant is not and what it serves.
    wrong = cluster.run_kubectl(
        "--context", "partition-0", "get", "--raw", "/api/v1/tenants/zeta/namespaces/default/pods"
    )
    assert wrong.returncode != 0
    assert 'tenant "zeta" is not served by this API server' in wrong.stderr
    assert 'partition "partition-1"' in wrong.stderr
    # Nodes, like every cluster-scoped object, live where tenant "system" does: from "n" on.
    nodes = cluster.run_kubectl("--context", "partition-0", "get", "nodes")
    assert nodes.returncode != 0
    assert 'holds tenant "system" (partition "partition-1"' in nodes.stderr
    assert kubectl(cluster, "partition-1", "get", "nodes", "-o", "name").strip()


def test_the_controller_manager_gets_the_cluster_cidr_and_neutron(cluster: Cluster) -> None:
    def pod_cidrs() -> list[str]:
        nodes = raw(cluster, "partition-1", "/api/v1/nodes")["items"]
        return [n["spec"].get("podCIDR", "") for n in nodes]

    eventually(lambda: bool(pod_cidrs()) and all(pod_cidrs()), what="the node's podCIDR")
    cluster_cidr = ipaddress.IPv4Network(CLUSTER_CIDR)
    assert all(ipaddress.IPv4Network(c).subnet_of(cluster_cidr) for c in pod_cidrs())
    neutron = cluster.data_dir / "neutron.yaml"
    assert stat.S_IMODE(neutron.stat().st_mode) == 0o600
    assert "neutron-s3cret" in neutron.read_text()
    running = commands(cluster.data_dir)
    [manager] = [argv for argv in running if "controller-manager" in argv]
    assert f"--cluster-cidr={CLUSTER_CIDR}" in manager
    assert manager[manager.index("--neutron-config") + 1] == str(neutron)
    # Only the supervisor, given it by the test on its command line, shows the password.
    shown = [argv for argv in running if "neutron-s3cret" in argv]
    assert [argv[argv.index("arktos_lite") + 1] for argv in shown] == ["up"]


def test_one_controller_set_serves_both_partitions(cluster: Cluster) -> None:
    for tenant in TENANTS:
        apply(cluster, tenant, deployment("web", tenant, 2))
    for tenant in TENANTS:
        eventually(
            lambda t=tenant: running_pods(cluster, t, "web") == 2,
            timeout=60,
            what=f"2 running pods in {tenant}",
        )
    listed = arktos(cluster, "get", "pods", "--all-tenants")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["TENANT", "NAMESPACE", "NAME"]
    assert sorted({line.split()[0] for line in lines[1:] if "web-" in line}) == sorted(TENANTS)


def test_a_dead_partition_leaves_the_other_working(cluster: Cluster) -> None:
    apply(cluster, "acme", deployment("survivor", "acme", 1))
    apply(cluster, "zeta", deployment("returner", "zeta", 1))
    for tenant, app in (("acme", "survivor"), ("zeta", "returner")):
        eventually(lambda t=tenant, a=app: running_pods(cluster, t, a) == 1, what=app)
    os.kill(apiserver_pid(cluster.data_dir, "partition-1"), signal.SIGKILL)
    scale(cluster, "acme", "survivor", 2)
    eventually(lambda: running_pods(cluster, "acme", "survivor") == 2, what="scale-up in acme")
    # The supervisor starts the killed API server again; its tenant converges too.
    eventually(
        lambda: running_pods(cluster, "zeta", "returner") == 1, timeout=60, what="partition-1 back"
    )
    scale(cluster, "zeta", "returner", 2)
    eventually(lambda: running_pods(cluster, "zeta", "returner") == 2, what="scale-up in zeta")
