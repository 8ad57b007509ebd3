"""Stock kubectl against `arktos up`, with the kubeconfig it writes."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import Cluster, require_tool

pytestmark = pytest.mark.slow

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: {image}
"""

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n"


@pytest.fixture(autouse=True)
def _kubectl() -> None:
    require_tool("kubectl")


def test_version_and_discovery(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json"))
    assert version["serverVersion"]["minor"] == "32"
    resources = cluster.kubectl("api-resources", "-o", "name")
    for name in (
        "pods",
        "tenants",
        "controllerinstances",
        "deployments.apps",
        "leases.coordination.k8s.io",
    ):
        assert name in resources.split()


def test_get_prints_tables(cluster: Cluster) -> None:
    namespaces = cluster.kubectl("get", "namespaces")
    assert namespaces.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    assert {"default", "kube-system", "kube-public"} <= {
        line.split()[0] for line in namespaces.splitlines()[1:]
    }
    tenants = cluster.kubectl("get", "tenants", "-o", "json")
    assert [t["metadata"]["name"] for t in json.loads(tenants)["items"]] == ["system"]


def test_run_get_label_annotate_delete_pod(cluster: Cluster) -> None:
    cluster.kubectl("run", "kp1", "--image=busybox", "--labels=app=kp1", "--", "sleep", "3600")
    header, row = cluster.kubectl("get", "pod", "kp1").splitlines()
    assert header.split() == ["NAME", "HASHKEY", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[0] == "kp1"
    # The cluster's own node may have started it already.
    assert row.split()[3] in ("Pending", "ContainerCreating", "Running")
    assert "NODE" in cluster.kubectl("get", "pod", "kp1", "-o", "wide").splitlines()[0]
    cluster.kubectl("label", "pod", "kp1", "tier=front")
    cluster.kubectl("annotate", "pod", "kp1", "note=hello")
    pod = json.loads(cluster.kubectl("get", "pod", "kp1", "-o", "json"))
    assert pod["metadata"]["labels"] == {"app": "kp1", "tier": "front"}
    assert pod["metadata"]["annotations"]["note"] == "hello"
    assert pod["metadata"]["tenant"] == "system"
    assert isinstance(pod["metadata"]["hashKey"], int)
    assert "kind: Pod" in cluster.kubectl("get", "pod", "kp1", "-o", "yaml")
    assert cluster.kubectl("get", "pods", "-l", "tier=front", "-o", "name").split() == ["pod/kp1"]
    described = cluster.kubectl("describe", "pod", "kp1")
    assert "busybox" in described
    cluster.kubectl("delete", "pod", "kp1")
    missing = cluster.run_kubectl("get", "pod", "kp1")
    assert missing.returncode != 0
    assert 'pods "kp1" not found' in missing.stderr


def test_create_apply_patch_scale_deployment(cluster: Cluster) -> None:
    manifest = DEPLOYMENT.format(name="kd1", replicas=2, image="nginx:1.25")
    cluster.kubectl("create", "-f", "-", input=manifest)
    cluster.kubectl(
        "apply", "-f", "-", input=DEPLOYMENT.format(name="kd1", replicas=2, image="nginx:1.26")
    )
    deployment = json.loads(cluster.kubectl("get", "deployment", "kd1", "-o", "json"))
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert deployment["metadata"]["generation"] == 2
    cluster.kubectl("patch", "deployment", "kd1", "--type=merge", "-p", '{"spec":{"paused":true}}')
    cluster.kubectl("scale", "deployment", "kd1", "--replicas=4")
    replicas = cluster.kubectl("get", "deployment", "kd1", "-o", "jsonpath={.spec.replicas}")
    assert replicas == "4"
    wide = cluster.kubectl("get", "deployments", "-o", "wide").splitlines()[0].split()
    assert wide[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "nginx:1.26" in cluster.kubectl("get", "deploy", "kd1", "-o", "wide")
    cluster.kubectl("delete", "deployment", "kd1")


def test_server_side_apply(cluster: Cluster) -> None:
    manifest = DEPLOYMENT.format(name="kd2", replicas=1, image="nginx:1.25")
    cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest)
    cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=DEPLOYMENT.format(name="kd2", replicas=3, image="nginx:1.25"),
    )
    assert cluster.kubectl("get", "deploy", "kd2", "-o", "jsonpath={.spec.replicas}") == "3"
    cluster.kubectl("delete", "deploy", "kd2")


def test_server_side_apply_field_managers(cluster: Cluster) -> None:
    def manifest(*, replicas: int, image: str = "nginx:1.25") -> str:
        return DEPLOYMENT.format(name="kd3", replicas=replicas, image=image)

    def get(jsonpath: str) -> str:
        return cluster.kubectl("get", "deploy", "kd3", "-o", f"jsonpath={{{jsonpath}}}")

    applied = cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest(replicas=1))
    assert applied.strip() == "deployment.apps/kd3 serverside-applied"
    # The deployment controller writes status and annotations; the applier's own entry
    # shows whether the second apply wrote anything.
    applier = '.metadata.managedFields[?(@.manager=="kubectl")]'
    entry = get(applier)
    again = cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest(replicas=1))
    assert again.strip() == "deployment.apps/kd3 serverside-applied"
    assert get(applier) == entry  # unchanged: nothing was written
    assert get(".metadata.generation") == "1"

    changed = manifest(replicas=1, image="nginx:1.26")
    cluster.kubectl("apply", "--server-side", "-f", "-", input=changed)
    assert get(".spec.template.spec.containers[0].image") == "nginx:1.26"

    # Another manager takes replicas; a different value from the applier is a conflict.
    cluster.kubectl("scale", "deployment", "kd3", "--replicas=4")
    conflict = cluster.run_kubectl(
        "apply", "--server-side", "-f", "-", input=manifest(replicas=2, image="nginx:1.26")
    )
    assert conflict.returncode != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
        "using apps/v1: .spec.replicas"
    ) in conflict.stderr
    assert "--force-conflicts" in conflict.stderr
    assert get(".spec.replicas") == "4"

    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=manifest(replicas=2, image="nginx:1.26"),
    )
    assert get(".spec.replicas") == "2"
    shown = json.loads(
        cluster.kubectl("get", "deploy", "kd3", "-o", "json", "--show-managed-fields")
    )
    entries = [e for e in shown["metadata"]["managedFields"] if e["manager"].startswith("kubectl")]
    assert [(e["manager"], e["operation"]) for e in entries] == [("kubectl", "Apply")]
    assert entries[0]["fieldsV1"]["f:spec"]["f:replicas"] == {}
    hidden = json.loads(cluster.kubectl("get", "deploy", "kd3", "-o", "json"))
    assert "managedFields" not in hidden["metadata"]
    cluster.kubectl("delete", "deploy", "kd3")


def test_client_side_apply_then_server_side_apply(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT.format(name="kd4", replicas=1, image="a"))
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT.format(name="kd4", replicas=5, image="a"))
    shown = json.loads(
        cluster.kubectl("get", "deploy", "kd4", "-o", "json", "--show-managed-fields")
    )
    # Besides the deployment controller's (annotations, status), kubectl's one entry.
    assert [
        e["manager"]
        for e in shown["metadata"]["managedFields"]
        if e["manager"].startswith("kubectl")
    ] == ["kubectl-client-side-apply"]
    server_side = DEPLOYMENT.format(name="kd4", replicas=2, image="a")
    conflict = cluster.run_kubectl("apply", "--server-side", "-f", "-", input=server_side)
    assert conflict.returncode != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
        "apps/v1: .spec.replicas"
    ) in conflict.stderr
    # With --force-conflicts kubectl also migrates the client-side entries to its own.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=server_side)
    shown = json.loads(
        cluster.kubectl("get", "deploy", "kd4", "-o", "json", "--show-managed-fields")
    )
    assert shown["spec"]["replicas"] == 2
    managers = {e["manager"] for e in shown["metadata"]["managedFields"]}
    assert "kubectl" in managers
    assert "kubectl-client-side-apply" not in managers
    cluster.kubectl("delete", "deploy", "kd4")


def test_all_namespaces_and_errors(cluster: Cluster) -> None:
    cluster.kubectl("create", "-f", "-", input=NAMESPACE.format(name="kns"))
    cluster.kubectl("create", "-n", "kns", "-f", "-", input=CONFIGMAP.format(name="cm1"))
    listed = cluster.kubectl("get", "configmaps", "--all-namespaces")
    assert listed.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == ["kns", "cm1"] for line in listed.splitlines())
    # Gone at once, the answer is a Status with its uid, which kubectl waits on.
    assert cluster.kubectl("delete", "-n", "kns", "configmap", "cm1").strip() == (
        'configmap "cm1" deleted'
    )
    bad = cluster.run_kubectl("run", "Bad_Name", "--image=busybox")
    assert bad.returncode != 0
    assert "Invalid value" in bad.stderr
    system = cluster.run_kubectl("delete", "tenant", "system")
    assert system.returncode != 0
    assert "may not be deleted" in system.stderr


def test_get_watch_sees_a_change(cluster: Cluster) -> None:
    cluster.kubectl("create", "-f", "-", input=CONFIGMAP.format(name="watched"))
    env = {"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    with subprocess.Popen(
        ["kubectl", "get", "configmap", "watched", "-w", "--request-timeout=20s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as watcher:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().split()[0] == "NAME"
        assert watcher.stdout.readline().split()[0] == "watched"
        cluster.kubectl("label", "configmap", "watched", "changed=yes")
        assert watcher.stdout.readline().split()[0] == "watched"
        watcher.terminate()


def test_typed_create_commands(cluster: Cluster) -> None:
    """kubectl's generators send protobuf bodies."""
    cluster.kubectl("create", "namespace", "typed")
    cluster.kubectl("create", "configmap", "cm", "-n", "typed", "--from-literal=a=b")
    cluster.kubectl("create", "secret", "generic", "s", "-n", "typed", "--from-literal=k=v")
    cluster.kubectl("create", "serviceaccount", "robot", "-n", "typed")
    cluster.kubectl("create", "service", "clusterip", "svc", "-n", "typed", "--tcp=80:8080")
    cluster.kubectl("create", "deployment", "dep", "-n", "typed", "--image=nginx", "--replicas=2")
    configmap = json.loads(cluster.kubectl("get", "configmap", "cm", "-n", "typed", "-o", "json"))
    assert configmap["data"] == {"a": "b"}
    secret = json.loads(cluster.kubectl("get", "secret", "s", "-n", "typed", "-o", "json"))
    assert secret["data"] == {"k": "dg=="}
    service = json.loads(cluster.kubectl("get", "service", "svc", "-n", "typed", "-o", "json"))
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert service["spec"]["clusterIP"].startswith("10.96.")
    replicas = cluster.kubectl(
        "get", "deploy", "dep", "-n", "typed", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas == "2"
