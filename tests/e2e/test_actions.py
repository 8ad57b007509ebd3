"""`arktos action reboot|snapshot|restore` against `arktos up`: the CLI posts a CustomAction,
the API server creates an Action bound to the pod's node, and `--wait` follows it."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from .conftest import Cluster, require_tool
from .test_workloads import marker

pytestmark = pytest.mark.slow


def arktos(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arktos_lite", "action", *args,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def vm_pod(name: str, node: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "virtualMachine": {"name": "vm", "image": "cirros", "keyPairName": "key"},
            },
        }
    )


def test_actions_from_the_cli(cluster: Cluster) -> None:
    require_tool("kubectl")
    name = f"vm-{marker()}"
    # A node no agent runs: the Action is created and waits for it.
    cluster.kubectl("create", "-f", "-", input=vm_pod(name, node=f"absent-{name}"))
    created = arktos(cluster, "snapshot", name, "--name", "s1")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"Created action 'snapshot' for Pod '{name}'"
    actions = json.loads(
        cluster.kubectl("get", "actions", "--field-selector", f"spec.nodeName=absent-{name}",
                        "-o", "json")
    )["items"]  # fmt: skip
    assert [a["spec"]["snapshotAction"] for a in actions] == [{"snapshotName": "s1"}]
    assert actions[0]["spec"]["podName"] == name

    waited = arktos(cluster, "reboot", name, "--wait", "--timeout", "1")
    assert waited.returncode == 1
    assert "did not complete" in waited.stderr

    missing = arktos(cluster, "restore", "no-such-pod", "--snapshot", "s1")
    assert missing.returncode == 1
    assert 'pods "no-such-pod" not found' in missing.stderr
    cluster.kubectl("delete", "pod", name, "--wait=false")


def test_the_action_subresource_as_kubectl_and_openapi_see_it(
    cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    require_tool("kubectl")
    name = f"vm-{marker()}"
    cluster.kubectl("create", "-f", "-", input=vm_pod(name, node=f"absent-{name}"))
    body = tmp_path / "reboot.json"
    body.write_text(
        json.dumps({"apiVersion": "v1", "kind": "CustomAction", "operation": "reboot",
                    "rebootParams": {"delayInSeconds": 3}})
    )  # fmt: skip
    answer = json.loads(
        cluster.kubectl(
            "create", "--raw", f"/api/v1/namespaces/default/pods/{name}/action", "-f", str(body)
        )
    )
    assert (answer["kind"], answer["status"]) == ("Status", "Success")
    assert answer["message"] == f"Created action 'reboot' for Pod '{name}'"
    made = json.loads(cluster.kubectl("get", "action", answer["details"]["name"], "-o", "json"))
    assert made["spec"]["rebootAction"] == {"delayInSeconds": 3}

    document = json.loads(cluster.kubectl("get", "--raw", "/openapi/v3/api/v1"))
    post = document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/action"]["post"]
    schemas = document["components"]["schemas"]
    request = post["requestBody"]["content"]["*/*"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert request == "io.k8s.api.core.v1.CustomAction"
    assert {"operation", "rebootParams", "snapshotParams", "restoreParams"} <= set(
        schemas[request]["properties"]
    )
    answered = post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert answered.endswith("/io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    assert post["x-kubernetes-group-version-kind"]["kind"] == "CustomAction"
    status = schemas["io.k8s.api.core.v1.ActionStatus"]["properties"]
    assert status["completionTime"]["format"] == "date-time"
    cluster.kubectl("delete", "pod", name, "--wait=false")
