"""Custom resources against `arktos up`: stock kubectl, the official Python client and a kopf
operator, each with a CRD of its own (own group, names and category), so none disturbs
another test.

kubectl caches discovery; each kubectl test has a cache directory of its own, so a kind
made by the test is found the way a fresh kubectl would find it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from .conftest import Cluster, require_tool

pytestmark = pytest.mark.slow

T = TypeVar("T")
Obj = dict[str, Any]

CRONTABS_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.kubectl.e2e.example.com
spec:
  group: kubectl.e2e.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [e2e-crons]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            description: What to run, and when.
            properties:
              cronSpec:
                type: string
                description: When to run it, in cron syntax.
              image:
                type: string
                description: The image to run.
              replicas:
                type: integer
                minimum: 0
                default: 1
                description: How many copies run at once.
            required: [cronSpec]
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Image, type: string, jsonPath: .spec.image}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
    subresources:
      status: {}
"""

CRONTAB = """\
apiVersion: kubectl.e2e.example.com/v1
kind: CronTab
metadata:
  name: {name}
spec:
  cronSpec: "*/5 * * * *"
  image: {image}
"""


def eventually(
    predicate: Callable[[], T | None], *, timeout: float = 20, what: str = "condition"
) -> T:
    """The first truthy value of `predicate`, polled; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not true within {timeout} s; last value: {last!r}")


@dataclasses.dataclass(frozen=True)
class Kubectl:
    """kubectl against the cluster with a discovery cache of its own."""

    cluster: Cluster
    cache: pathlib.Path

    def __call__(self, *args: str, input: str | None = None) -> str:
        return self.cluster.kubectl(f"--cache-dir={self.cache}", *args, input=input)

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.cluster.run_kubectl(f"--cache-dir={self.cache}", *args, input=input)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["kubectl", f"--cache-dir={self.cache}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)},
        )


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path: pathlib.Path) -> Kubectl:
    require_tool("kubectl")
    return Kubectl(cluster, tmp_path / "kube-cache")


def columns(table: str) -> list[dict[str, str]]:
    """The rows of a kubectl table as {header: cell}, cut at the header's column starts."""
    header, *rows = table.splitlines()
    names = header.split()
    starts = [header.index(f" {name}") + 1 if i else 0 for i, name in enumerate(names)]
    ends = [*starts[1:], None]
    return [
        {name: row[start:end].strip() for name, start, end in zip(names, starts, ends, strict=True)}
        for row in rows
    ]


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The lines a process writes to stdout, read in a thread, as they come."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_kubectl_serves_a_custom_kind_end_to_end(kubectl: Kubectl) -> None:
    crd = "crd/crontabs.kubectl.e2e.example.com"
    kubectl("apply", "-f", "-", input=CRONTABS_CRD)
    kubectl("wait", "--for=condition=established", crd, "--timeout=30s")

    resources = kubectl("api-resources", "--api-group=kubectl.e2e.example.com")
    assert columns(resources) == [
        {
            "NAME": "crontabs",
            "SHORTNAMES": "ct",
            "APIVERSION": "kubectl.e2e.example.com/v1",
            "NAMESPACED": "true",
            "KIND": "CronTab",
        }
    ]

    # Client-side apply, then server-side apply.
    applied = kubectl("apply", "-f", "-", input=CRONTAB.format(name="ct-one", image="busybox"))
    assert applied.strip() == "crontab.kubectl.e2e.example.com/ct-one created"
    applied = kubectl(
        "apply", "--server-side", "-f", "-", input=CRONTAB.format(name="ct-two", image="alpine")
    )
    assert applied.strip() == "crontab.kubectl.e2e.example.com/ct-two serverside-applied"

    table = kubectl("get", "crontabs")
    assert table.splitlines()[0].split() == ["NAME", "SPEC", "IMAGE", "REPLICAS", "AGE"]
    rows = {row["NAME"]: row for row in columns(table)}
    assert sorted(rows) == ["ct-one", "ct-two"]
    assert rows["ct-one"]["SPEC"] == "*/5 * * * *"
    assert rows["ct-one"]["IMAGE"] == "busybox"
    assert rows["ct-one"]["REPLICAS"] == "1"  # defaulted by the schema
    assert rows["ct-two"]["IMAGE"] == "alpine"
    # The short name, the category and the qualified name find the same objects.
    by_short = kubectl("get", "ct", "-o", "name").split()
    assert by_short == [
        "crontab.kubectl.e2e.example.com/ct-one",
        "crontab.kubectl.e2e.example.com/ct-two",
    ]
    assert kubectl("get", "e2e-crons", "-o", "name").split() == by_short
    assert kubectl("get", "crontabs.kubectl.e2e.example.com", "-o", "name").split() == by_short

    kubectl("patch", "crontab", "ct-one", "--type", "merge", "-p", '{"spec":{"image":"redis"}}')
    kubectl("label", "crontab", "ct-one", "tier=batch")
    one = json.loads(kubectl("get", "crontab", "ct-one", "-o", "json"))
    assert one["apiVersion"] == "kubectl.e2e.example.com/v1"
    assert one["kind"] == "CronTab"
    assert one["spec"] == {"cronSpec": "*/5 * * * *", "image": "redis", "replicas": 1}
    assert one["metadata"]["labels"] == {"tier": "batch"}
    assert one["metadata"]["tenant"] == "system"
    assert kubectl("get", "ct", "-l", "tier=batch", "-o", "name").split() == [by_short[0]]
    as_yaml = kubectl("get", "ct", "ct-one", "-o", "yaml")
    assert "kind: CronTab" in as_yaml
    assert "image: redis" in as_yaml

    kubectl("scale", "--replicas=3", "crontabs/ct-one")
    assert kubectl("get", "ct", "ct-one", "-o", "jsonpath={.spec.replicas}") == "3"
    # The other served version shows the same object.
    beta = json.loads(
        kubectl("get", "crontabs.v1beta1.kubectl.e2e.example.com", "ct-one", "-o", "json")
    )
    assert beta["apiVersion"] == "kubectl.e2e.example.com/v1beta1"
    assert beta["spec"]["replicas"] == 3

    # A client-side apply again: a merge patch of what changed since the last one.
    kubectl("apply", "-f", "-", input=CRONTAB.format(name="ct-one", image="nginx"))
    one = json.loads(kubectl("get", "crontab", "ct-one", "-o", "json"))
    assert one["spec"] == {"cronSpec": "*/5 * * * *", "image": "nginx", "replicas": 3}
    assert one["metadata"]["labels"] == {"tier": "batch"}

    kubectl("delete", "crontab", "ct-two")
    missing = kubectl.run("get", "crontab", "ct-two")
    assert missing.returncode != 0
    assert 'crontabs.kubectl.e2e.example.com "ct-two" not found' in missing.stderr

    # Deleting the CRD deletes its objects: made again, it has none.
    kubectl("delete", crd, "--timeout=60s")
    assert kubectl.run("get", "crontabs").returncode != 0
    kubectl("apply", "-f", "-", input=CRONTABS_CRD)
    kubectl("wait", "--for=condition=established", crd, "--timeout=30s")
    assert kubectl("get", "crontabs", "-o", "name") == ""
    kubectl("delete", crd, "--timeout=60s")


def test_kubectl_explains_a_custom_kind(kubectl: Kubectl) -> None:
    crd = "crd/crontabs.kubectl.e2e.example.com"
    kubectl("apply", "-f", "-", input=CRONTABS_CRD)
    try:
        kubectl("wait", "--for=condition=established", crd, "--timeout=30s")
        explained = kubectl("explain", "crontab")
        assert "KIND:       CronTab" in explained
        assert "A CronTab runs an image on a schedule." in explained
        assert "spec\t<Object>" in explained
        spec = kubectl("explain", "crontab.spec")
        assert "What to run, and when." in spec
        assert "cronSpec\t<string> -required-" in spec
        assert "The image to run." in spec
        assert "replicas\t<integer>" in spec
    finally:
        kubectl("delete", crd, "--timeout=60s")


def test_kubectl_watches_a_custom_kind(kubectl: Kubectl) -> None:
    crd = "crd/crontabs.kubectl.e2e.example.com"
    kubectl("apply", "-f", "-", input=CRONTABS_CRD)
    try:
        kubectl("wait", "--for=condition=established", crd, "--timeout=30s")
        watch = kubectl.popen("get", "crontabs", "-w", "-o", "name")
        try:
            lines = lines_of(watch)
            kubectl("apply", "-f", "-", input=CRONTAB.format(name="ct-watched", image="busybox"))
            deadline = time.monotonic() + 20
            seen: list[str] = []
            while "crontab.kubectl.e2e.example.com/ct-watched" not in seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the watch never showed ct-watched; it showed {seen}")
                with contextlib.suppress(queue.Empty):
                    seen.append(lines.get(timeout=remaining))
        finally:
            watch.terminate()
            _, stderr = watch.communicate(timeout=10)
        assert "error" not in stderr.lower(), stderr
    finally:
        kubectl("delete", crd, "--timeout=60s")


def test_a_deleted_namespace_takes_its_custom_objects(kubectl: Kubectl) -> None:
    crd = "crd/crontabs.kubectl.e2e.example.com"
    kubectl("apply", "-f", "-", input=CRONTABS_CRD)
    try:
        kubectl("wait", "--for=condition=established", crd, "--timeout=30s")
        kubectl("create", "namespace", "crons")
        for name in ("ct-a", "ct-b"):
            manifest = CRONTAB.format(name=name, image="busybox")
            kubectl("apply", "-n", "crons", "-f", "-", input=manifest)
        kubectl("apply", "-f", "-", input=CRONTAB.format(name="ct-elsewhere", image="busybox"))
        kubectl("delete", "namespace", "crons", "--timeout=60s")
        assert kubectl("get", "ct", "-A", "-o", "name").split() == [
            "crontab.kubectl.e2e.example.com/ct-elsewhere"
        ]
    finally:
        kubectl.run("delete", "namespace", "crons", "--ignore-not-found", "--timeout=60s")
        kubectl("delete", crd, "--timeout=60s")


# The official Python client

GADGETS = ("pyclient.e2e.example.com", "v1", "gadgets")
GADGETS_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.pyclient.e2e.example.com"},
    "spec": {
        "group": "pyclient.e2e.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "default": 1},
                                    "colour": {"type": "string"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer"},
                                    "state": {"type": "string"},
                                },
                            },
                        },
                    }
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.size",
                    },
                },
            }
        ],
    },
}


def gadget(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "pyclient.e2e.example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": name, "labels": {"set": "py"}},
        "spec": spec,
    }


@pytest.fixture
def api_client(cluster: Cluster) -> Iterator[kubernetes.client.ApiClient]:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(cluster.kubeconfig), client_configuration=config
    )
    with kubernetes.client.ApiClient(config) as client:
        yield client


@pytest.fixture
def gadgets_crd(api_client: kubernetes.client.ApiClient) -> Iterator[None]:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    made = extensions.create_custom_resource_definition(GADGETS_CRD)
    assert made.metadata.name == "gadgets.pyclient.e2e.example.com"

    def established() -> bool:
        crd = extensions.read_custom_resource_definition("gadgets.pyclient.e2e.example.com")
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        return conditions.get("Established") == "True"

    eventually(established, what="the CRD is established")
    yield
    extensions.delete_custom_resource_definition("gadgets.pyclient.e2e.example.com")

    def gone() -> bool:
        try:
            extensions.read_custom_resource_definition("gadgets.pyclient.e2e.example.com")
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, what="the CRD is gone")


@pytest.mark.usefixtures("gadgets_crd")
def test_custom_objects_api(api_client: kubernetes.client.ApiClient) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    group, version, plural = GADGETS
    made = custom.create_namespaced_custom_object(
        group, version, "default", plural, gadget("g1", colour="red")
    )
    assert made["spec"] == {"colour": "red", "size": 1}
    assert made["metadata"]["uid"]
    custom.create_namespaced_custom_object(group, version, "default", plural, gadget("g2", size=2))
    other = gadget("g3")
    other["metadata"]["labels"] = {"set": "other"}
    custom.create_namespaced_custom_object(group, version, "default", plural, other)

    read = custom.get_namespaced_custom_object(group, version, "default", plural, "g1")
    assert read["metadata"]["uid"] == made["metadata"]["uid"]
    listed = custom.list_namespaced_custom_object(
        group, version, "default", plural, label_selector="set=py"
    )
    assert listed["kind"] == "GadgetList"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["g1", "g2"]

    patched = custom.patch_namespaced_custom_object(
        group, version, "default", plural, "g1", {"spec": {"colour": "blue"}}
    )
    assert patched["spec"]["colour"] == "blue"
    assert patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(
        group, version, "default", plural, "g1", {"status": {"state": "Ready", "size": 1}}
    )
    assert status["status"] == {"state": "Ready", "size": 1}
    assert status["metadata"]["generation"] == 2  # a status write is no new generation

    scale = custom.get_namespaced_custom_object_scale(group, version, "default", plural, "g1")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 1
    assert scale["status"]["replicas"] == 1
    scale["spec"]["replicas"] = 5
    custom.replace_namespaced_custom_object_scale(group, version, "default", plural, "g1", scale)
    read = custom.get_namespaced_custom_object(group, version, "default", plural, "g1")
    assert read["spec"]["size"] == 5

    custom.delete_namespaced_custom_object(group, version, "default", plural, "g1")
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(group, version, "default", plural, "g1")
    assert missing.value.status == 404


@pytest.mark.usefixtures("gadgets_crd")
def test_dynamic_client(api_client: kubernetes.client.ApiClient, tmp_path: pathlib.Path) -> None:
    dynamic = kubernetes.dynamic.DynamicClient(
        api_client, cache_file=str(tmp_path / "discovery.json")
    )
    gadgets = dynamic.resources.get(api_version="pyclient.e2e.example.com/v1", kind="Gadget")
    assert gadgets.namespaced
    made = gadgets.create(body=gadget("dyn-1", colour="green"), namespace="default")
    assert made.spec.colour == "green"
    read = gadgets.get(name="dyn-1", namespace="default")
    assert read.metadata.uid == made.metadata.uid
    assert [item.metadata.name for item in gadgets.get(namespace="default").items] == ["dyn-1"]
    gadgets.delete(name="dyn-1", namespace="default")
    with pytest.raises(kubernetes.dynamic.exceptions.NotFoundError):
        gadgets.get(name="dyn-1", namespace="default")


@pytest.mark.usefixtures("gadgets_crd")
def test_watch_from_a_resource_version(api_client: kubernetes.client.ApiClient) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    group, version, plural = GADGETS
    listed = custom.list_namespaced_custom_object(group, version, "default", plural)
    custom.create_namespaced_custom_object(group, version, "default", plural, gadget("w1"))
    custom.patch_namespaced_custom_object(
        group, version, "default", plural, "w1", {"spec": {"size": 3}}
    )
    custom.delete_namespaced_custom_object(group, version, "default", plural, "w1")
    seen = [
        (event["type"], event["object"]["metadata"]["name"], event["object"]["spec"].get("size"))
        for event in kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            group,
            version,
            "default",
            plural,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=1,
        )
    ]
    assert seen == [("ADDED", "w1", 1), ("MODIFIED", "w1", 3), ("DELETED", "w1", 3)]


# A kopf operator

OPERATOR = pathlib.Path(__file__).with_name("_kopf_operator.py")
WIDGETS_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.kopf.e2e.example.com
spec:
  group: kopf.e2e.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
    subresources:
      status: {}
"""
WIDGET = """\
apiVersion: kopf.e2e.example.com/v1
kind: Widget
metadata: {{name: {name}}}
spec: {{color: {color}}}
"""


@contextlib.contextmanager
def operator(cluster: Cluster, log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kopf run` of the operator until the block ends, then SIGINT and a clean exit.

    Its output goes to `log`, which a failing test shows.
    """
    kopf = shutil.which("kopf", path=str(pathlib.Path(sys.executable).parent)) or "kopf"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [kopf, "run", "--standalone", "--all-namespaces", "--verbose", str(OPERATOR)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"kopf did not stop on SIGINT:\n{log.read_text()}") from None


def test_a_kopf_operator_handles_create_update_delete(
    cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    require_tool("kubectl")
    kubectl = Kubectl(cluster, tmp_path / "kube-cache")
    crd = "crd/widgets.kopf.e2e.example.com"
    kubectl("apply", "-f", "-", input=WIDGETS_CRD)
    log = tmp_path / "kopf.log"
    try:
        kubectl("wait", "--for=condition=established", crd, "--timeout=30s")
        with operator(cluster, log) as process:

            def widget() -> Obj | None:
                found = kubectl.run("get", "widget", "w1", "-o", "json")
                return json.loads(found.stdout) if found.returncode == 0 else None

            def config_map() -> Obj | None:
                found = kubectl.run("get", "configmap", "w1-config", "-o", "json")
                return json.loads(found.stdout) if found.returncode == 0 else None

            def message(expected: str) -> Callable[[], bool]:
                def check() -> bool:
                    assert process.poll() is None, "kopf exited"
                    obj = widget()
                    return obj is not None and obj.get("status", {}).get("message") == expected

                return check

            kubectl("apply", "-f", "-", input=WIDGET.format(name="w1", color="red"))
            eventually(message("created with color red"), what="the create handler ran")
            made = config_map()
            assert made is not None
            assert made["data"] == {"color": "red"}
            owner = widget()
            assert owner is not None
            assert [
                (r["kind"], r["name"], r["uid"]) for r in made["metadata"]["ownerReferences"]
            ] == [("Widget", "w1", owner["metadata"]["uid"])]

            kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"color":"blue"}}')
            eventually(message("color is now blue"), what="the update handler ran")
            recoloured = config_map()
            assert recoloured is not None
            assert recoloured["data"] == {"color": "blue"}

            kubectl("delete", "widget", "w1", "--wait=false")
            eventually(lambda: widget() is None, what="the widget is gone")
            assert config_map() is None
            assert process.poll() is None, "kopf exited"
        assert process.returncode == 0
    except BaseException:
        print(f"kopf's output:\n{log.read_text() if log.exists() else '(none)'}")
        raise
    finally:
        kubectl.run("delete", crd, "--timeout=60s")
