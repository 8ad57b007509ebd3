"""The core controllers inside `arktos up`, seen through stock kubectl: a tenant is born
with its namespaces and admin binding and dies completely; a namespace's contents go with
it; owned objects follow their owner."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from .conftest import Cluster, require_tool


@pytest.fixture(autouse=True)
def _kubectl() -> None:
    require_tool("kubectl")


def eventually(check: Callable[[], bool], *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the cluster did not get there in time")
        time.sleep(0.1)


def names(cluster: Cluster, path: str) -> set[str]:
    result = cluster.run_kubectl("get", "--raw", path)
    if result.returncode != 0:
        return set()
    return {item["metadata"]["name"] for item in json.loads(result.stdout)["items"]}


TENANT = """
apiVersion: v1
kind: Tenant
metadata:
  name: e2e-team
"""


def test_a_tenant_is_born_complete_and_dies_completely(cluster: Cluster) -> None:
    cluster.kubectl("create", "-f", "-", input=TENANT)
    eventually(
        lambda: (
            names(cluster, "/api/v1/tenants/e2e-team/namespaces")
            == {"default", "kube-system", "kube-public"}
        )
    )
    rbac = "/apis/rbac.authorization.k8s.io/v1/tenants/e2e-team"
    eventually(lambda: names(cluster, f"{rbac}/clusterrolebindings") == {"admin-role-binding"})
    eventually(
        lambda: (
            "default"
            in names(cluster, "/api/v1/tenants/e2e-team/namespaces/default/serviceaccounts")
        )
    )
    cluster.kubectl(
        "create",
        "--raw",
        "/api/v1/tenants/e2e-team/namespaces/default/configmaps",
        "-f",
        "-",
        input=json.dumps({"metadata": {"name": "settings"}, "data": {"a": "b"}}),
    )
    cluster.kubectl("delete", "tenant", "e2e-team", "--wait=false")
    eventually(lambda: cluster.run_kubectl("get", "tenant", "e2e-team").returncode != 0, timeout=30)
    assert names(cluster, "/api/v1/tenants/e2e-team/namespaces") == set()
    assert names(cluster, "/api/v1/tenants/e2e-team/configmaps") == set()


def test_deleting_a_namespace_deletes_what_it_holds(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "e2e-doomed")
    cluster.kubectl("create", "configmap", "c1", "-n", "e2e-doomed", "--from-literal=a=b")
    cluster.kubectl("create", "secret", "generic", "s1", "-n", "e2e-doomed", "--from-literal=a=b")
    cluster.kubectl("delete", "namespace", "e2e-doomed", "--timeout=30s")
    result = cluster.run_kubectl("get", "namespace", "e2e-doomed")
    assert result.returncode != 0
    assert "NotFound" in result.stderr or "not found" in result.stderr


def test_owned_objects_follow_their_owner(cluster: Cluster) -> None:
    owner = json.loads(
        cluster.kubectl("create", "configmap", "e2e-owner", "--from-literal=a=b", "-o", "json")
    )
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "e2e-dependent",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "e2e-owner",
                    "uid": owner["metadata"]["uid"],
                }
            ],
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(dependent))
    cluster.kubectl("delete", "configmap", "e2e-owner")
    eventually(lambda: cluster.run_kubectl("get", "configmap", "e2e-dependent").returncode != 0)
