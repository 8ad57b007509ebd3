"""Validation: Kubernetes 1.32's rules and wording, Arktos's unified pods and objects."""

from __future__ import annotations

import base64
import copy
import dataclasses
import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from arktos_lite.api import _defaults as defaults, _errors as errors, _validation as validation
from arktos_lite.api._errors import CauseType
from arktos_lite.api._validation import Quantity, QuantityError, QuantityFormat

Obj = dict[str, Any]

REQUIRED = CauseType.REQUIRED
INVALID = CauseType.INVALID
NOT_SUPPORTED = CauseType.NOT_SUPPORTED
DUPLICATE = CauseType.DUPLICATE
FORBIDDEN = CauseType.FORBIDDEN
TOO_LONG = CauseType.TOO_LONG
NOT_FOUND = CauseType.NOT_FOUND
TYPE_INVALID = CauseType.TYPE_INVALID


# --- Valid objects, one or more per kind -------------------------------------------------


def _meta(name: str, **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "tenant": "system", **extra}


def _pod() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta("web", labels={"app": "web", "example.com/tier": "front"}),
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx:1.25",
                    "ports": [{"name": "http", "containerPort": 80}],
                    "env": [
                        {"name": "MODE", "value": "fast"},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                    },
                    "livenessProbe": {"httpGet": {"port": "http"}},
                }
            ],
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
            ],
            "nodeSelector": {"disk": "ssd"},
        },
    }


def _vm_pod() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta("vm"),
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros-0.5.1",
                "keyPairName": "default-key",
                "userData": base64.b64encode(b"#!/bin/sh\necho hello\n").decode(),
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            },
            "nics": [{"name": "eth0", "ipAddress": "10.0.0.5"}, {"name": "eth1"}],
        },
    }


def _service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("web"),
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "10.0.0.10",
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "https", "port": 443, "targetPort": 8443},
            ],
        },
    }


def _template() -> Obj:
    return {
        "metadata": {"labels": {"app": "web", "track": "stable"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]},
    }


def _deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("web"),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "template": _template(),
        },
    }


def _replica_set() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": _meta("web-5d8f"),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": _template(),
        },
    }


def _namespace() -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "tenant": "t1"}}


def _tenant() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Tenant",
        "metadata": {"name": "t1"},
        "spec": {"storageClusterId": "63"},
    }


def _node() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1.example.com", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {
            "podCIDR": "10.244.1.0/24",
            "taints": [{"key": "dedicated", "value": "vm", "effect": "NoSchedule"}],
        },
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    }


def _config_map() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("settings"),
        "data": {"app.properties": "a=b", "MODE": "fast"},
        "binaryData": {"logo.png": base64.b64encode(b"\x89PNG").decode()},
    }


def _secret() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta("creds"),
        "data": {"password": base64.b64encode(b"s3cret").decode()},
        "stringData": {"username": "admin"},
    }


def _event() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": _meta("web.17a2b3c4d5e6f7a8"),
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/web to node-1",
        "type": "Normal",
        "count": 1,
    }


def _lease() -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": _meta("node-1"),
        "spec": {
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "renewTime": "2024-05-01T10:00:00.000000Z",
        },
    }


def _controller_instance() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ControllerInstance",
        "metadata": {"name": "replicaset-6a1c1f3e-8c2b-4f6a-9d3e-1b2c3d4e5f60"},
        "controllerType": "ReplicaSet",
        "controllerKey": 2**63 - 1,
        "workloadNum": 0,
        "isLocked": False,
    }


def _action() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Action",
        "metadata": _meta("snapshot-1700000000"),
        "spec": {
            "nodeName": "node-1",
            "podName": "vm",
            "podID": "8d3c0d6e-64f4-4b87-9f3f-0a1b2c3d4e5f",
            "snapshotAction": {"snapshotName": "before-upgrade"},
        },
    }


def _service_account() -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("builder")}


def _endpoints() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": "10.244.1.5", "nodeName": "node-1"}],
                "notReadyAddresses": [{"ip": "fd00::5"}],
                "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
            }
        ],
    }


FIXTURES: dict[str, tuple[str, str, Callable[[], Obj]]] = {
    "Pod": ("", "Pod", _pod),
    "VmPod": ("", "Pod", _vm_pod),
    "Service": ("", "Service", _service),
    "Deployment": ("apps", "Deployment", _deployment),
    "ReplicaSet": ("apps", "ReplicaSet", _replica_set),
    "Namespace": ("", "Namespace", _namespace),
    "Tenant": ("", "Tenant", _tenant),
    "Node": ("", "Node", _node),
    "ConfigMap": ("", "ConfigMap", _config_map),
    "Secret": ("", "Secret", _secret),
    "Event": ("", "Event", _event),
    "Lease": ("coordination.k8s.io", "Lease", _lease),
    "ControllerInstance": ("", "ControllerInstance", _controller_instance),
    "Action": ("", "Action", _action),
    "ServiceAccount": ("", "ServiceAccount", _service_account),
    "Endpoints": ("", "Endpoints", _endpoints),
}


def fixture(name: str) -> tuple[str, str, Obj]:
    """A valid object, defaulted as the API server defaults it before validation."""
    group, kind, build = FIXTURES[name]
    obj = build()
    defaults.apply_defaults(group, kind, obj)
    return group, kind, obj


def show(found: list[errors.FieldError]) -> str:
    return "\n".join(map(str, found)) or "(no errors)"


@pytest.mark.parametrize("name", FIXTURES)
def test_valid_objects_pass(name: str) -> None:
    group, kind, obj = fixture(name)
    assert validation.validate(group, kind, obj, None) == []


@pytest.mark.parametrize("name", FIXTURES)
def test_unchanged_update_passes(name: str) -> None:
    group, kind, obj = fixture(name)
    assert validation.validate(group, kind, copy.deepcopy(obj), obj) == []


def test_validation_does_not_change_the_object() -> None:
    group, kind, obj = fixture("Pod")
    obj["spec"]["containers"][0]["image"] = ""
    before = copy.deepcopy(obj)
    validation.validate(group, kind, obj, copy.deepcopy(obj))
    assert obj == before


# --- One failing case per rule ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    fixture: str
    change: Callable[[Obj], object]
    field: str
    type: CauseType
    detail: str = ""


def case(
    name: str,
    fixture: str,
    change: Callable[[Obj], object],
    field: str,
    cause: CauseType,
    detail: str = "",
) -> Any:
    return pytest.param(Case(fixture, change, field, cause, detail), id=name)


def ctr(obj: Obj, i: int = 0) -> Obj:
    container: Obj = obj["spec"]["containers"][i]
    return container


def vm(obj: Obj) -> Obj:
    machine: Obj = obj["spec"]["virtualMachine"]
    return machine


def tmpl(obj: Obj) -> Obj:
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


RFC1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
RFC1123_LABEL = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters"
DNS1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start"
PORT_RANGE = "must be between 1 and 65535, inclusive"
NONNEGATIVE = "must be greater than or equal to 0"
LABEL_VALUE = "a valid label must be an empty string or consist of alphanumeric characters"
QUALIFIED = "name part must consist of alphanumeric characters, '-', '_' or '.'"
BAD_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
IMMUTABLE = "field is immutable"

METADATA_CASES = [
    case(
        "name-format",
        "Pod",
        lambda o: o["metadata"].update(name="Web_1"),
        "metadata.name",
        INVALID,
        RFC1123_SUBDOMAIN,
    ),
    case(
        "name-length",
        "Pod",
        lambda o: o["metadata"].update(name="a" * 254),
        "metadata.name",
        INVALID,
        "must be no more than 253 characters",
    ),
    case(
        "name-required",
        "Pod",
        lambda o: o["metadata"].pop("name"),
        "metadata.name",
        REQUIRED,
        "name or generateName is required",
    ),
    case(
        "generate-name-format",
        "Pod",
        lambda o: o["metadata"].update(generateName="Web-"),
        "metadata.generateName",
        INVALID,
        "a lowercase RFC 1123 subdomain",
    ),
    case(
        "namespace-name-is-a-label",
        "Namespace",
        lambda o: o["metadata"].update(name="team.a"),
        "metadata.name",
        INVALID,
        "must not contain dots",
    ),
    case(
        "namespace-name-format",
        "Namespace",
        lambda o: o["metadata"].update(name="Team-A"),
        "metadata.name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "service-name-is-dns1035",
        "Service",
        lambda o: o["metadata"].update(name="1web"),
        "metadata.name",
        INVALID,
        DNS1035,
    ),
    case(
        "tenant-name-all",
        "Tenant",
        lambda o: o["metadata"].update(name="all"),
        "metadata.name",
        INVALID,
        "is not an acceptable tenant name",
    ),
    case(
        "tenant-name-format",
        "Tenant",
        lambda o: o["metadata"].update(name="t-"),
        "metadata.name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "namespace-required",
        "Pod",
        lambda o: o["metadata"].pop("namespace"),
        "metadata.namespace",
        REQUIRED,
    ),
    case(
        "namespace-format",
        "Pod",
        lambda o: o["metadata"].update(namespace="Default"),
        "metadata.namespace",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "tenant-required",
        "ConfigMap",
        lambda o: o["metadata"].pop("tenant"),
        "metadata.tenant",
        REQUIRED,
    ),
    case(
        "tenant-format",
        "Namespace",
        lambda o: o["metadata"].update(tenant="T1"),
        "metadata.tenant",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "label-key",
        "Pod",
        lambda o: o["metadata"]["labels"].update({"bad key": "x"}),
        "metadata.labels",
        INVALID,
        QUALIFIED,
    ),
    case(
        "label-key-prefix",
        "Pod",
        lambda o: o["metadata"]["labels"].update({"Example.com/x": "x"}),
        "metadata.labels",
        INVALID,
        "prefix part a lowercase RFC 1123 subdomain",
    ),
    case(
        "label-value",
        "Pod",
        lambda o: o["metadata"]["labels"].update(app="-web"),
        "metadata.labels",
        INVALID,
        LABEL_VALUE,
    ),
    case(
        "label-value-length",
        "Pod",
        lambda o: o["metadata"]["labels"].update(app="a" * 64),
        "metadata.labels",
        INVALID,
        "must be no more than 63 characters",
    ),
    case(
        "label-value-type",
        "Pod",
        lambda o: o["metadata"]["labels"].update(app=3),
        "metadata.labels[app]",
        TYPE_INVALID,
        "must be of type string",
    ),
    case(
        "annotation-key",
        "Pod",
        lambda o: o["metadata"].update(annotations={"a/b/c": "x"}),
        "metadata.annotations",
        INVALID,
        "a qualified name must consist of",
    ),
    case(
        "annotations-size",
        "Pod",
        lambda o: o["metadata"].update(annotations={"big": "x" * (256 * 1024)}),
        "metadata.annotations",
        TOO_LONG,
        "may not be more than 262144 bytes",
    ),
    case(
        "generation",
        "Deployment",
        lambda o: o["metadata"].update(generation=-1),
        "metadata.generation",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "owner-uid",
        "Pod",
        lambda o: o["metadata"].update(
            ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web"}]
        ),
        "metadata.ownerReferences.uid",
        INVALID,
        "uid must not be empty",
    ),
    case(
        "owner-controllers",
        "Pod",
        lambda o: o["metadata"].update(
            ownerReferences=[
                {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
                {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True},
            ]
        ),
        "metadata.ownerReferences",
        INVALID,
        'Only one reference can have Controller set to true. Found "true" in references for a '
        "and b",
    ),
    case(
        "finalizer-unqualified",
        "Pod",
        lambda o: o["metadata"].update(finalizers=["cleanup"]),
        "metadata.finalizers[0]",
        INVALID,
        "name is neither a standard finalizer name nor is it fully qualified",
    ),
    case(
        "finalizers-orphan-and-foreground",
        "Pod",
        lambda o: o["metadata"].update(finalizers=["orphan", "foregroundDeletion"]),
        "metadata.finalizers",
        INVALID,
        "finalizer orphan and foregroundDeletion cannot be both set",
    ),
    case(
        "metadata-type",
        "Pod",
        lambda o: o["metadata"].update(labels=["app"]),
        "metadata.labels",
        TYPE_INVALID,
        "must be of type object",
    ),
]

POD_CASES = [
    case(
        "containers-required",
        "Pod",
        lambda o: o["spec"].pop("containers"),
        "spec.containers",
        REQUIRED,
    ),
    case(
        "containers-and-vm",
        "Pod",
        lambda o: o["spec"].update(virtualMachine=_vm_pod()["spec"]["virtualMachine"]),
        "spec",
        FORBIDDEN,
        "containers and virtualMachine workloads in same pod",
    ),
    case(
        "container-name-format",
        "Pod",
        lambda o: ctr(o).update(name="Nginx"),
        "spec.containers[0].name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "container-name-required",
        "Pod",
        lambda o: ctr(o).pop("name"),
        "spec.containers[0].name",
        REQUIRED,
    ),
    case(
        "container-name-unique",
        "Pod",
        lambda o: o["spec"]["containers"].append(copy.deepcopy(ctr(o))),
        "spec.containers[1].name",
        DUPLICATE,
    ),
    case(
        "init-container-name-unique",
        "Pod",
        lambda o: o["spec"]["initContainers"][0].update(name="nginx"),
        "spec.initContainers[0].name",
        DUPLICATE,
    ),
    case(
        "image-required",
        "Pod",
        lambda o: ctr(o).update(image=""),
        "spec.containers[0].image",
        REQUIRED,
    ),
    case(
        "image-whitespace",
        "Pod",
        lambda o: ctr(o).update(image=" nginx"),
        "spec.containers[0].image",
        INVALID,
        "must not have leading or trailing whitespace",
    ),
    case(
        "image-pull-policy",
        "Pod",
        lambda o: ctr(o).update(imagePullPolicy="Sometimes"),
        "spec.containers[0].imagePullPolicy",
        NOT_SUPPORTED,
        'supported values: "Always", "IfNotPresent", "Never"',
    ),
    case(
        "termination-message-policy",
        "Pod",
        lambda o: ctr(o).update(terminationMessagePolicy="Log"),
        "spec.containers[0].terminationMessagePolicy",
        INVALID,
        "must be 'File' or 'FallbackToLogsOnError'",
    ),
    case(
        "container-port-required",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(containerPort=0),
        "spec.containers[0].ports[0].containerPort",
        REQUIRED,
    ),
    case(
        "container-port-range",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(containerPort=70000),
        "spec.containers[0].ports[0].containerPort",
        INVALID,
        PORT_RANGE,
    ),
    case(
        "container-port-type",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(containerPort="80"),
        "spec.containers[0].ports[0].containerPort",
        TYPE_INVALID,
        "must be of type integer",
    ),
    case(
        "host-port-range",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(hostPort=-1),
        "spec.containers[0].ports[0].hostPort",
        INVALID,
        PORT_RANGE,
    ),
    case(
        "port-protocol",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(protocol="HTTP"),
        "spec.containers[0].ports[0].protocol",
        NOT_SUPPORTED,
        'supported values: "SCTP", "TCP", "UDP"',
    ),
    case(
        "port-name-charset",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(name="HTTP"),
        "spec.containers[0].ports[0].name",
        INVALID,
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
    ),
    case(
        "port-name-letter",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(name="8080"),
        "spec.containers[0].ports[0].name",
        INVALID,
        "must contain at least one letter (a-z)",
    ),
    case(
        "port-name-hyphens",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(name="a--b"),
        "spec.containers[0].ports[0].name",
        INVALID,
        "must not contain consecutive hyphens",
    ),
    case(
        "port-name-edge-hyphen",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(name="-http"),
        "spec.containers[0].ports[0].name",
        INVALID,
        "must not begin or end with a hyphen",
    ),
    case(
        "port-name-length",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(name="http-alternative"),
        "spec.containers[0].ports[0].name",
        INVALID,
        "must be no more than 15 characters",
    ),
    case(
        "port-name-unique",
        "Pod",
        lambda o: ctr(o)["ports"].append({"name": "http", "containerPort": 81, "protocol": "TCP"}),
        "spec.containers[0].ports[1].name",
        DUPLICATE,
    ),
    case(
        "env-name-format",
        "Pod",
        lambda o: ctr(o)["env"][0].update(name="1MODE"),
        "spec.containers[0].env[0].name",
        INVALID,
        "a valid environment variable name must consist of alphabetic characters, digits, '_', "
        "'-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  "
        "or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
    ),
    case(
        "env-name-dot",
        "Pod",
        lambda o: ctr(o)["env"][0].update(name=".."),
        "spec.containers[0].env[0].name",
        INVALID,
        "must not be '..'",
    ),
    case(
        "env-name-required",
        "Pod",
        lambda o: ctr(o)["env"][0].pop("name"),
        "spec.containers[0].env[0].name",
        REQUIRED,
    ),
    case(
        "env-value-from-empty",
        "Pod",
        lambda o: ctr(o)["env"][1].update(valueFrom={}),
        "spec.containers[0].env[1].valueFrom",
        INVALID,
        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    ),
    case(
        "env-value-and-value-from",
        "Pod",
        lambda o: ctr(o)["env"][1].update(value="x"),
        "spec.containers[0].env[1].valueFrom",
        INVALID,
        "may not be specified when `value` is not empty",
    ),
    case(
        "quantity-suffix",
        "Pod",
        lambda o: ctr(o)["resources"]["limits"].update(cpu="1mm"),
        "spec.containers[0].resources.limits[cpu]",
        INVALID,
        "unable to parse quantity's suffix",
    ),
    case(
        "quantity-format",
        "Pod",
        lambda o: ctr(o)["resources"]["requests"].update(memory="lots"),
        "spec.containers[0].resources.requests[memory]",
        INVALID,
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ),
    case(
        "quantity-type",
        "Pod",
        lambda o: ctr(o)["resources"]["requests"].update(memory=True),
        "spec.containers[0].resources.requests[memory]",
        TYPE_INVALID,
    ),
    case(
        "quantity-negative",
        "Pod",
        lambda o: ctr(o)["resources"]["requests"].update(cpu="-1"),
        "spec.containers[0].resources.requests[cpu]",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "requests-above-limits",
        "Pod",
        lambda o: ctr(o)["resources"]["requests"].update(cpu="1"),
        "spec.containers[0].resources.requests",
        INVALID,
        "must be less than or equal to cpu limit of 500m",
    ),
    case(
        "resource-name",
        "Pod",
        lambda o: ctr(o)["resources"]["limits"].update(gpu="1"),
        "spec.containers[0].resources.limits[gpu]",
        INVALID,
        "must be a standard resource for containers",
    ),
    case(
        "extended-resource-integer",
        "Pod",
        lambda o: ctr(o)["resources"]["limits"].update({"example.com/gpu": "500m"}),
        "spec.containers[0].resources.limits[example.com/gpu]",
        INVALID,
        "must be an integer",
    ),
    case(
        "extended-resource-needs-limit",
        "Pod",
        lambda o: ctr(o)["resources"]["requests"].update({"example.com/gpu": "1"}),
        "spec.containers[0].resources.limits",
        REQUIRED,
        "Limit must be set for non overcommitable resources",
    ),
    case(
        "restart-policy",
        "Pod",
        lambda o: o["spec"].update(restartPolicy="Sometimes"),
        "spec.restartPolicy",
        NOT_SUPPORTED,
        'supported values: "Always", "OnFailure", "Never"',
    ),
    case(
        "dns-policy",
        "Pod",
        lambda o: o["spec"].update(dnsPolicy="Magic"),
        "spec.dnsPolicy",
        NOT_SUPPORTED,
        'supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
    ),
    case(
        "dns-none-needs-config",
        "Pod",
        lambda o: o["spec"].update(dnsPolicy="None"),
        "spec.dnsConfig",
        REQUIRED,
        "must provide `dnsConfig` when `dnsPolicy` is None",
    ),
    case(
        "volume-name-unique",
        "Pod",
        lambda o: o["spec"]["volumes"].append({"name": "data", "emptyDir": {}}),
        "spec.volumes[1].name",
        DUPLICATE,
    ),
    case(
        "volume-name-format",
        "Pod",
        lambda o: o["spec"]["volumes"][0].update(name="Data"),
        "spec.volumes[0].name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "volume-source-required",
        "Pod",
        lambda o: o["spec"]["volumes"][0].pop("emptyDir"),
        "spec.volumes[0]",
        REQUIRED,
        "must specify a volume type",
    ),
    case(
        "volume-one-source",
        "Pod",
        lambda o: o["spec"]["volumes"][0].update(hostPath={"path": "/srv"}),
        "spec.volumes[0].emptyDir",
        FORBIDDEN,
        "may not specify more than 1 volume type",
    ),
    case(
        "volume-mount-refers-to-volume",
        "Pod",
        lambda o: ctr(o)["volumeMounts"][0].update(name="cache"),
        "spec.containers[0].volumeMounts[0].name",
        NOT_FOUND,
    ),
    case(
        "volume-mount-path-required",
        "Pod",
        lambda o: ctr(o)["volumeMounts"][0].pop("mountPath"),
        "spec.containers[0].volumeMounts[0].mountPath",
        REQUIRED,
    ),
    case(
        "probe-handler",
        "Pod",
        lambda o: ctr(o).update(readinessProbe={"periodSeconds": 5}),
        "spec.containers[0].readinessProbe",
        REQUIRED,
        "must specify a handler type",
    ),
    case(
        "liveness-success-threshold",
        "Pod",
        lambda o: ctr(o)["livenessProbe"].update(successThreshold=2),
        "spec.containers[0].livenessProbe.successThreshold",
        INVALID,
        "must be 1",
    ),
    case(
        "toleration-operator",
        "Pod",
        lambda o: o["spec"]["tolerations"][0].update(operator="Like"),
        "spec.tolerations[0].operator",
        NOT_SUPPORTED,
        'supported values: "Equal", "Exists"',
    ),
    case(
        "toleration-effect",
        "Pod",
        lambda o: o["spec"]["tolerations"][0].update(effect="NoRun"),
        "spec.tolerations[0].effect",
        NOT_SUPPORTED,
        'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
    ),
    case(
        "toleration-exists-without-value",
        "Pod",
        lambda o: o["spec"]["tolerations"][0].update(operator="Exists"),
        "spec.tolerations[0].operator",
        INVALID,
        "value must be empty when `operator` is 'Exists'",
    ),
    case(
        "toleration-empty-key",
        "Pod",
        lambda o: o["spec"]["tolerations"][0].pop("key"),
        "spec.tolerations[0].operator",
        INVALID,
        "operator must be Exists when `key` is empty",
    ),
    case(
        "toleration-seconds-need-no-execute",
        "Pod",
        lambda o: o["spec"]["tolerations"][0].update(tolerationSeconds=30),
        "spec.tolerations[0].effect",
        INVALID,
        "effect must be 'NoExecute' when `tolerationSeconds` is set",
    ),
    case(
        "node-selector-value",
        "Pod",
        lambda o: o["spec"]["nodeSelector"].update(disk="fast ssd"),
        "spec.nodeSelector",
        INVALID,
        LABEL_VALUE,
    ),
    case(
        "termination-grace-period",
        "Pod",
        lambda o: o["spec"].update(terminationGracePeriodSeconds=-1),
        "spec.terminationGracePeriodSeconds",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "active-deadline",
        "Pod",
        lambda o: o["spec"].update(activeDeadlineSeconds=0),
        "spec.activeDeadlineSeconds",
        INVALID,
        "must be between 1 and 2147483647, inclusive",
    ),
    case(
        "node-name",
        "Pod",
        lambda o: o["spec"].update(nodeName="Node_1"),
        "spec.nodeName",
        INVALID,
        "a lowercase RFC 1123 subdomain",
    ),
    case(
        "host-network-ports",
        "Pod",
        lambda o: (o["spec"].update(hostNetwork=True), ctr(o)["ports"][0].update(hostPort=8080)),
        "spec.containers[0].ports[0].containerPort",
        INVALID,
        "must match `hostPort` when `hostNetwork` is true",
    ),
    case(
        "spec-type",
        "Pod",
        lambda o: o.update(spec=[]),
        "spec",
        TYPE_INVALID,
        "must be of type object",
    ),
    case(
        "containers-type",
        "Pod",
        lambda o: o["spec"].update(containers={"name": "x"}),
        "spec.containers",
        TYPE_INVALID,
        "must be of type array",
    ),
]

VM_CASES = [
    case(
        "vm-name-required",
        "VmPod",
        lambda o: vm(o).pop("name"),
        "spec.virtualMachine.name",
        REQUIRED,
        "virtual machine name cannot be empty",
    ),
    case(
        "vm-name-format",
        "VmPod",
        lambda o: vm(o).update(name="VM.1"),
        "spec.virtualMachine.name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "vm-image-required",
        "VmPod",
        lambda o: vm(o).pop("image"),
        "spec.virtualMachine.image",
        REQUIRED,
    ),
    case(
        "vm-key-required",
        "VmPod",
        lambda o: vm(o).pop("keyPairName"),
        "spec.virtualMachine.keyPairName",
        REQUIRED,
        "KeyPairName and PublicKey can't be both empty",
    ),
    case(
        "vm-user-data-base64",
        "VmPod",
        lambda o: vm(o).update(userData="#!/bin/sh"),
        "spec.virtualMachine.userData",
        INVALID,
        "illegal base64 data at input byte 0",
    ),
    case(
        "vm-user-data-size",
        "VmPod",
        lambda o: vm(o).update(userData=base64.b64encode(b"x" * 65536).decode()),
        "spec.virtualMachine.userData",
        TOO_LONG,
        "may not be more than 65535 bytes",
    ),
    case(
        "vm-power-spec",
        "VmPod",
        lambda o: vm(o).update(powerSpec="Off"),
        "spec.virtualMachine.powerSpec",
        NOT_SUPPORTED,
        'supported values: "Running", "Paused", "Shutdown", "Suspended"',
    ),
    case(
        "vm-pull-policy",
        "VmPod",
        lambda o: vm(o).update(imagePullPolicy="Daily"),
        "spec.virtualMachine.imagePullPolicy",
        NOT_SUPPORTED,
    ),
    case(
        "vm-resources",
        "VmPod",
        lambda o: vm(o)["resources"].update(requests={"memory": "2Gi"}),
        "spec.virtualMachine.resources.requests",
        INVALID,
        "must be less than or equal to memory limit of 1Gi",
    ),
    case(
        "vm-resources-quantity",
        "VmPod",
        lambda o: vm(o)["resources"]["limits"].update(cpu="one"),
        "spec.virtualMachine.resources.limits[cpu]",
        INVALID,
        "quantities must match the regular expression",
    ),
    case(
        "vm-volume-mount",
        "VmPod",
        lambda o: vm(o).update(volumeMounts=[{"name": "disk", "mountPath": "/dev/vdb"}]),
        "spec.virtualMachine.volumeMounts[0].name",
        NOT_FOUND,
    ),
    case(
        "nic-name-unique",
        "VmPod",
        lambda o: o["spec"]["nics"][1].update(name="eth0"),
        "spec.nics[1].name",
        DUPLICATE,
    ),
    case(
        "nic-ip",
        "VmPod",
        lambda o: o["spec"]["nics"][0].update(ipAddress="10.0.0.256"),
        "spec.nics[0].ipAddress",
        INVALID,
        BAD_IP,
    ),
]

SERVICE_CASES = [
    case("ports-required", "Service", lambda o: o["spec"].pop("ports"), "spec.ports", REQUIRED),
    case(
        "port-range",
        "Service",
        lambda o: o["spec"]["ports"][0].update(port=0),
        "spec.ports[0].port",
        INVALID,
        PORT_RANGE,
    ),
    case(
        "port-protocol-unique",
        "Service",
        lambda o: o["spec"]["ports"][1].update(port=80),
        "spec.ports[1]",
        DUPLICATE,
    ),
    case(
        "port-names-required",
        "Service",
        lambda o: o["spec"]["ports"][1].pop("name"),
        "spec.ports[1].name",
        REQUIRED,
    ),
    case(
        "port-names-unique",
        "Service",
        lambda o: o["spec"]["ports"][1].update(name="http"),
        "spec.ports[1].name",
        DUPLICATE,
    ),
    case(
        "port-name-format",
        "Service",
        lambda o: o["spec"]["ports"][1].update(name="HTTPS"),
        "spec.ports[1].name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "port-protocol",
        "Service",
        lambda o: o["spec"]["ports"][0].update(protocol="QUIC"),
        "spec.ports[0].protocol",
        NOT_SUPPORTED,
        'supported values: "SCTP", "TCP", "UDP"',
    ),
    case(
        "target-port-number",
        "Service",
        lambda o: o["spec"]["ports"][1].update(targetPort=70000),
        "spec.ports[1].targetPort",
        INVALID,
        PORT_RANGE,
    ),
    case(
        "target-port-name",
        "Service",
        lambda o: o["spec"]["ports"][0].update(targetPort="8080"),
        "spec.ports[0].targetPort",
        INVALID,
        "must contain at least one letter (a-z)",
    ),
    case(
        "node-port-range",
        "Service",
        lambda o: (o["spec"].update(type="NodePort"), o["spec"]["ports"][0].update(nodePort=80)),
        "spec.ports[0].nodePort",
        INVALID,
        "provided port is not in the valid range. The range of valid ports is 30000-32767",
    ),
    case(
        "node-port-on-cluster-ip",
        "Service",
        lambda o: o["spec"]["ports"][0].update(nodePort=30080),
        "spec.ports[0].nodePort",
        FORBIDDEN,
        "may not be used when `type` is 'ClusterIP'",
    ),
    case(
        "type",
        "Service",
        lambda o: o["spec"].update(type="Internal"),
        "spec.type",
        NOT_SUPPORTED,
        'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ),
    case(
        "selector-value",
        "Service",
        lambda o: o["spec"]["selector"].update(app="web!"),
        "spec.selector",
        INVALID,
        LABEL_VALUE,
    ),
    case(
        "cluster-ip",
        "Service",
        lambda o: o["spec"].update(clusterIP="10.0.0.300"),
        "spec.clusterIPs[0]",
        INVALID,
        BAD_IP,
    ),
    case(
        "headless-node-port",
        "Service",
        lambda o: o["spec"].update(clusterIP="None", type="NodePort"),
        "spec.clusterIPs[0]",
        INVALID,
        "may not be set to 'None' for NodePort services",
    ),
    case(
        "external-name-required",
        "Service",
        lambda o: o.update(spec={"type": "ExternalName", "sessionAffinity": "None"}),
        "spec.externalName",
        REQUIRED,
    ),
    case(
        "session-affinity",
        "Service",
        lambda o: o["spec"].update(sessionAffinity="Sticky"),
        "spec.sessionAffinity",
        NOT_SUPPORTED,
        'supported values: "ClientIP", "None"',
    ),
]


def _mismatched_template(o: Obj) -> None:
    o["spec"]["template"]["metadata"]["labels"]["app"] = "api"


WORKLOAD_CASES = [
    case(
        "selector-required",
        "Deployment",
        lambda o: o["spec"].pop("selector"),
        "spec.selector",
        REQUIRED,
    ),
    case(
        "selector-empty",
        "Deployment",
        lambda o: o["spec"].update(selector={}),
        "spec.selector",
        INVALID,
        "empty selector is invalid for deployment",
    ),
    case(
        "selector-matches-template",
        "Deployment",
        _mismatched_template,
        "spec.template.metadata.labels",
        INVALID,
        "`selector` does not match template `labels`",
    ),
    case(
        "selector-expression-matches-template",
        "Deployment",
        lambda o: o["spec"]["template"]["metadata"]["labels"].update(legacy="yes"),
        "spec.template.metadata.labels",
        INVALID,
        "`selector` does not match template `labels`",
    ),
    case(
        "selector-operator",
        "Deployment",
        lambda o: o["spec"]["selector"]["matchExpressions"][0].update(operator="Near"),
        "spec.selector.matchExpressions[0].operator",
        INVALID,
        "not a valid selector operator",
    ),
    case(
        "selector-values-required",
        "Deployment",
        lambda o: o["spec"]["selector"]["matchExpressions"][0].update(values=[]),
        "spec.selector.matchExpressions[0].values",
        REQUIRED,
        "must be specified when `operator` is 'In' or 'NotIn'",
    ),
    case(
        "selector-label-value",
        "Deployment",
        lambda o: o["spec"]["selector"]["matchLabels"].update(app="web app"),
        "spec.selector.matchLabels",
        INVALID,
        LABEL_VALUE,
    ),
    case(
        "replicas",
        "Deployment",
        lambda o: o["spec"].update(replicas=-1),
        "spec.replicas",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "template-pod-spec",
        "Deployment",
        lambda o: tmpl(o)["containers"][0].pop("image"),
        "spec.template.spec.containers[0].image",
        REQUIRED,
    ),
    case(
        "template-restart-policy",
        "Deployment",
        lambda o: tmpl(o).update(restartPolicy="Never"),
        "spec.template.spec.restartPolicy",
        NOT_SUPPORTED,
        'supported values: "Always"',
    ),
    case(
        "template-containers-and-vm",
        "Deployment",
        lambda o: tmpl(o).update(virtualMachine=_vm_pod()["spec"]["virtualMachine"]),
        "spec.template.spec",
        FORBIDDEN,
        "containers and virtualMachine workloads in same pod",
    ),
    case(
        "strategy-type",
        "Deployment",
        lambda o: o["spec"]["strategy"].update(type="BlueGreen"),
        "spec.strategy",
        NOT_SUPPORTED,
        'supported values: "Recreate", "RollingUpdate"',
    ),
    case(
        "max-surge-format",
        "Deployment",
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxSurge="half"),
        "spec.strategy.rollingUpdate.maxSurge",
        INVALID,
        "a valid percent string must be a numeric string followed by an ending '%'",
    ),
    case(
        "max-unavailable-negative",
        "Deployment",
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=-1),
        "spec.strategy.rollingUpdate.maxUnavailable",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "max-surge-and-unavailable-zero",
        "Deployment",
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=0, maxSurge="0%"),
        "spec.strategy.rollingUpdate.maxUnavailable",
        INVALID,
        "may not be 0 when `maxSurge` is 0",
    ),
    case(
        "max-unavailable-above-100",
        "Deployment",
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable="120%"),
        "spec.strategy.rollingUpdate.maxUnavailable",
        INVALID,
        "must not be greater than 100%",
    ),
    case(
        "recreate-without-rolling-update",
        "Deployment",
        lambda o: o["spec"]["strategy"].update(type="Recreate"),
        "spec.strategy.rollingUpdate",
        FORBIDDEN,
        "may not be specified when strategy `type` is 'Recreate'",
    ),
    case(
        "progress-deadline",
        "Deployment",
        lambda o: o["spec"].update(minReadySeconds=600),
        "spec.progressDeadlineSeconds",
        INVALID,
        "must be greater than minReadySeconds",
    ),
    case(
        "replica-set-selector",
        "ReplicaSet",
        _mismatched_template,
        "spec.template.metadata.labels",
        INVALID,
        "`selector` does not match template `labels`",
    ),
    case(
        "replica-set-replicas",
        "ReplicaSet",
        lambda o: o["spec"].update(replicas=-2),
        "spec.replicas",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "replica-set-template-pod-spec",
        "ReplicaSet",
        lambda o: tmpl(o)["containers"][0].update(name="Nginx"),
        "spec.template.spec.containers[0].name",
        INVALID,
        RFC1123_LABEL,
    ),
]

CLUSTER_CASES = [
    case(
        "namespace-finalizer",
        "Namespace",
        lambda o: o["spec"].update(finalizers=["cleanup"]),
        "spec.finalizers",
        INVALID,
        "name is neither a standard finalizer name nor is it fully qualified",
    ),
    case(
        "tenant-storage-cluster-range",
        "Tenant",
        lambda o: o["spec"].update(storageClusterId="64"),
        "spec.storageClusterId",
        INVALID,
        "must be between 0 and 63, inclusive",
    ),
    case(
        "tenant-storage-cluster-number",
        "Tenant",
        lambda o: o["spec"].update(storageClusterId="first"),
        "spec.storageClusterId",
        INVALID,
        "must be between 0 and 63, inclusive",
    ),
    case(
        "tenant-finalizer",
        "Tenant",
        lambda o: o["spec"]["finalizers"].append("Bad/"),
        "spec.finalizers",
        INVALID,
        "name part must be non-empty",
    ),
    case(
        "node-taint-effect",
        "Node",
        lambda o: o["spec"]["taints"][0].update(effect="NoRun"),
        "spec.taints[0].effect",
        NOT_SUPPORTED,
    ),
    case(
        "node-taint-effect-required",
        "Node",
        lambda o: o["spec"]["taints"][0].pop("effect"),
        "spec.taints[0].effect",
        REQUIRED,
    ),
    case(
        "node-taint-unique",
        "Node",
        lambda o: o["spec"]["taints"].append({"key": "dedicated", "effect": "NoSchedule"}),
        "spec.taints[1]",
        DUPLICATE,
        "taints must be unique by key and effect pair",
    ),
    case(
        "node-pod-cidr",
        "Node",
        lambda o: o["spec"].update(podCIDR="10.244.1.0/33"),
        "spec.podCIDR",
        INVALID,
        "not a valid CIDR",
    ),
    case(
        "node-capacity",
        "Node",
        lambda o: o["status"]["capacity"].update(cpu="-4"),
        "status.capacity[cpu]",
        INVALID,
        NONNEGATIVE,
    ),
]

CONFIG_CASES = [
    case(
        "config-map-key",
        "ConfigMap",
        lambda o: o["data"].update({"app properties": "x"}),
        "data[app properties]",
        INVALID,
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
        "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')",
    ),
    case(
        "config-map-key-dots",
        "ConfigMap",
        lambda o: o["data"].update({"..data": "x"}),
        "data[..data]",
        INVALID,
        "must not start with '..'",
    ),
    case(
        "config-map-key-length",
        "ConfigMap",
        lambda o: o["data"].update({"k" * 254: "x"}),
        "data[" + "k" * 254 + "]",
        INVALID,
        "must be no more than 253 characters",
    ),
    case(
        "config-map-value-type",
        "ConfigMap",
        lambda o: o["data"].update(MODE=1),
        "data[MODE]",
        TYPE_INVALID,
        "must be of type string",
    ),
    case(
        "config-map-binary-base64",
        "ConfigMap",
        lambda o: o["binaryData"].update({"logo.png": "not base64!"}),
        "binaryData[logo.png]",
        INVALID,
        "illegal base64 data at input byte 3",
    ),
    case(
        "config-map-key-in-both",
        "ConfigMap",
        lambda o: o["data"].update({"logo.png": "x"}),
        "data[logo.png]",
        INVALID,
        "duplicate of key present in binaryData",
    ),
    case(
        "config-map-size",
        "ConfigMap",
        lambda o: o["data"].update(big="x" * (1024 * 1024)),
        "",
        TOO_LONG,
        "may not be more than 1048576 bytes",
    ),
    case(
        "secret-base64",
        "Secret",
        lambda o: o["data"].update(password="s3cret!"),
        "data[password]",
        INVALID,
        "illegal base64 data at input byte 6",
    ),
    case(
        "secret-key",
        "Secret",
        lambda o: o["data"].update({"pass word": "eA=="}),
        "data[pass word]",
        INVALID,
        "a valid config key must consist of",
    ),
    case(
        "secret-size",
        "Secret",
        lambda o: o["data"].update(big=base64.b64encode(b"x" * (1024 * 1024)).decode()),
        "data",
        TOO_LONG,
        "may not be more than 1048576 bytes",
    ),
    case(
        "secret-tls-keys",
        "Secret",
        lambda o: o.update(type="kubernetes.io/tls"),
        "data[tls.crt]",
        REQUIRED,
    ),
    case(
        "secret-service-account-token",
        "Secret",
        lambda o: o.update(type="kubernetes.io/service-account-token"),
        "metadata.annotations[kubernetes.io/service-account.name]",
        REQUIRED,
    ),
    case(
        "service-account-name",
        "ServiceAccount",
        lambda o: o["metadata"].update(name="Builder"),
        "metadata.name",
        INVALID,
        "a lowercase RFC 1123 subdomain",
    ),
    case(
        "service-account-automount",
        "ServiceAccount",
        lambda o: o.update(automountServiceAccountToken="yes"),
        "automountServiceAccountToken",
        TYPE_INVALID,
        "must be of type boolean",
    ),
]

OTHER_CASES = [
    case(
        "event-involved-object",
        "Event",
        lambda o: o.pop("involvedObject"),
        "involvedObject",
        REQUIRED,
    ),
    case(
        "event-namespace",
        "Event",
        lambda o: o["involvedObject"].update(namespace="other"),
        "involvedObject.namespace",
        INVALID,
        "does not match event.namespace",
    ),
    case(
        "lease-duration",
        "Lease",
        lambda o: o["spec"].update(leaseDurationSeconds=0),
        "spec.leaseDurationSeconds",
        INVALID,
        "must be greater than 0",
    ),
    case(
        "lease-transitions",
        "Lease",
        lambda o: o["spec"].update(leaseTransitions=-1),
        "spec.leaseTransitions",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "lease-holder-type",
        "Lease",
        lambda o: o["spec"].update(holderIdentity=7),
        "spec.holderIdentity",
        TYPE_INVALID,
        "must be of type string",
    ),
    case(
        "lease-renew-time-type",
        "Lease",
        lambda o: o["spec"].update(renewTime=1714557600),
        "spec.renewTime",
        TYPE_INVALID,
    ),
    case(
        "controller-type-required",
        "ControllerInstance",
        lambda o: o.pop("controllerType"),
        "controllerType",
        REQUIRED,
    ),
    case(
        "controller-key",
        "ControllerInstance",
        lambda o: o.update(controllerKey=-1),
        "controllerKey",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "controller-key-int64",
        "ControllerInstance",
        lambda o: o.update(controllerKey=2**63),
        "controllerKey",
        INVALID,
        "must be between 0 and 9223372036854775807, inclusive",
    ),
    case(
        "workload-num",
        "ControllerInstance",
        lambda o: o.update(workloadNum=-1),
        "workloadNum",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "controller-is-locked",
        "ControllerInstance",
        lambda o: o.update(isLocked="no"),
        "isLocked",
        TYPE_INVALID,
    ),
    case(
        "controller-instance-name",
        "ControllerInstance",
        lambda o: o["metadata"].update(name="ReplicaSet-1"),
        "metadata.name",
        INVALID,
        RFC1123_LABEL,
    ),
    case(
        "action-pod-name",
        "Action",
        lambda o: o["spec"].pop("podName"),
        "spec.podName",
        REQUIRED,
    ),
    case(
        "action-none",
        "Action",
        lambda o: o["spec"].pop("snapshotAction"),
        "spec",
        REQUIRED,
        "must specify one of: `rebootAction`, `snapshotAction` or `restoreAction`",
    ),
    case(
        "action-several",
        "Action",
        lambda o: o["spec"].update(rebootAction={"delayInSeconds": 10}),
        "spec",
        INVALID,
        "may not have more than one field specified at a time",
    ),
    case(
        "action-snapshot-name",
        "Action",
        lambda o: o["spec"].update(snapshotAction={}),
        "spec.snapshotAction.snapshotName",
        REQUIRED,
    ),
    case(
        "action-restore-id",
        "Action",
        lambda o: (o["spec"].pop("snapshotAction"), o["spec"].update(restoreAction={})),
        "spec.restoreAction.snapshotID",
        REQUIRED,
    ),
    case(
        "action-reboot-delay",
        "Action",
        lambda o: (
            o["spec"].pop("snapshotAction"),
            o["spec"].update(rebootAction={"delayInSeconds": -5}),
        ),
        "spec.rebootAction.delayInSeconds",
        INVALID,
        NONNEGATIVE,
    ),
    case(
        "endpoints-ip",
        "Endpoints",
        lambda o: o["subsets"][0]["addresses"][0].update(ip="10.244.1.500"),
        "subsets[0].addresses[0].ip",
        INVALID,
        BAD_IP,
    ),
    case(
        "endpoints-addresses",
        "Endpoints",
        lambda o: (o["subsets"][0].pop("addresses"), o["subsets"][0].pop("notReadyAddresses")),
        "subsets[0]",
        REQUIRED,
        "must specify `addresses` or `notReadyAddresses`",
    ),
    case(
        "endpoints-port",
        "Endpoints",
        lambda o: o["subsets"][0]["ports"][1].update(port=65536),
        "subsets[0].ports[1].port",
        INVALID,
        PORT_RANGE,
    ),
    case(
        "endpoints-port-name",
        "Endpoints",
        lambda o: o["subsets"][0]["ports"][1].pop("name"),
        "subsets[0].ports[1].name",
        REQUIRED,
    ),
    case(
        "endpoints-protocol",
        "Endpoints",
        lambda o: o["subsets"][0]["ports"][0].update(protocol="ICMP"),
        "subsets[0].ports[0].protocol",
        NOT_SUPPORTED,
    ),
]


@pytest.mark.parametrize(
    "case",
    METADATA_CASES
    + POD_CASES
    + VM_CASES
    + SERVICE_CASES
    + WORKLOAD_CASES
    + CLUSTER_CASES
    + CONFIG_CASES
    + OTHER_CASES,
)
def test_rule(case: Case) -> None:
    group, kind, obj = fixture(case.fixture)
    case.change(obj)
    found = validation.validate(group, kind, obj, None)
    matches = [
        e
        for e in found
        if e.field == case.field and e.type is case.type and case.detail in e.detail
    ]
    assert matches, f"wanted {case.field} {case.type.value} {case.detail!r}, got:\n{show(found)}"


def test_bad_name_reads_as_kube_apiserver_says_it() -> None:
    group, kind, obj = fixture("Pod")
    obj["metadata"]["name"] = "Web"
    [error] = validation.validate(group, kind, obj, None)
    assert str(error) == f'metadata.name: Invalid value: "Web": {RFC1123_SUBDOMAIN}'
    invalid = errors.Invalid.for_object("Pod", "Web", [error])
    assert invalid.message == f'Pod "Web" is invalid: {error}'


def test_every_problem_is_reported_once() -> None:
    group, kind, obj = fixture("Pod")
    obj["spec"]["containers"][0].update(image="", imagePullPolicy="Sometimes")
    obj["spec"]["restartPolicy"] = "Sometimes"
    found = validation.validate(group, kind, obj, None)
    assert [e.field for e in found] == [
        "spec.containers[0].image",
        "spec.containers[0].imagePullPolicy",
        "spec.restartPolicy",
    ]


@pytest.mark.parametrize(
    ("fixture_name", "change"),
    [
        ("VmPod", lambda o: (vm(o).pop("keyPairName"), vm(o).update(publicKey="ssh-ed25519 AAAA"))),
        ("VmPod", lambda o: vm(o).update(powerSpec="Shutdown")),
        ("Pod", lambda o: o["spec"].update(tolerations=[{"operator": "Exists"}])),
        ("Pod", lambda o: ctr(o)["resources"]["limits"].update({"example.com/gpu": "2"})),
        ("Service", lambda o: o.update(spec={"type": "ExternalName", "externalName": "db.io."})),
        ("Service", lambda o: (o["spec"].update(clusterIP="None"), o["spec"].pop("ports"))),
        ("Service", lambda o: o["spec"]["ports"][0].update(targetPort=8080)),
        ("Service", lambda o: o["spec"].update(clusterIP="fd00::10", ipFamilies=["IPv6"])),
        ("Deployment", lambda o: o["spec"].update(replicas=0)),
        ("Deployment", lambda o: o["spec"]["strategy"].update(type="Recreate", rollingUpdate=None)),
        ("Tenant", lambda o: o["spec"].update(storageClusterId="0")),
        ("Node", lambda o: o["status"]["capacity"].update({"hugepages-2Mi": "1Gi"})),
        ("Event", lambda o: o["involvedObject"].update(kind="Node", namespace="")),
        ("Secret", lambda o: o.update(type="example.com/custom")),
        ("ConfigMap", lambda o: o.update(immutable=True)),
    ],
)
def test_allowed_variations(fixture_name: str, change: Callable[[Obj], object]) -> None:
    group, kind, obj = fixture(fixture_name)
    change(obj)
    defaults.apply_defaults(group, kind, obj)  # as the API server does before validating
    found = validation.validate(group, kind, obj, None)
    assert found == [], show(found)


def test_unknown_kinds_get_their_metadata_checked_only() -> None:
    widget = {"metadata": {"name": "w"}, "spec": {"anything": ["goes", 1, None]}, "status": 5}
    assert validation.validate("example.com", "Widget", widget, None) == []
    widget["metadata"]["name"] = "W"
    [error] = validation.validate("example.com", "Widget", widget, None)
    assert error.field == "metadata.name"


# --- Updates ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Update:
    fixture: str
    change: Callable[[Obj], object]
    field: str | None  # None: the update is allowed
    type: CauseType | None = None
    detail: str = ""


def update(
    name: str,
    fixture: str,
    change: Callable[[Obj], object],
    field: str | None = None,
    cause: CauseType | None = None,
    detail: str = "",
) -> Any:
    return pytest.param(Update(fixture, change, field, cause, detail), id=name)


POD_CHANGES = "pod updates may not change fields other than `spec.containers[*].image`,"


def _bind(o: Obj) -> None:
    o["spec"]["nodeName"] = "node-1"


UPDATES = [
    update("name", "Pod", lambda o: o["metadata"].update(name="web2"), "metadata.name", INVALID),
    update("uid", "Pod", lambda o: o["metadata"].update(uid="2"), "metadata.uid", INVALID),
    update(
        "namespace",
        "Pod",
        lambda o: o["metadata"].update(namespace="other"),
        "metadata.namespace",
        INVALID,
        IMMUTABLE,
    ),
    update(
        "creation-timestamp",
        "ConfigMap",
        lambda o: o["metadata"].update(creationTimestamp="2030-01-01T00:00:00Z"),
        "metadata.creationTimestamp",
        INVALID,
        IMMUTABLE,
    ),
    update(
        "generation-decrement",
        "Deployment",
        lambda o: o["metadata"].update(generation=1),
        "metadata.generation",
        INVALID,
        "must not be decremented",
    ),
    update("labels-may-change", "Pod", lambda o: o["metadata"]["labels"].update(app="api")),
    update("image-may-change", "Pod", lambda o: ctr(o).update(image="nginx:1.26")),
    update(
        "init-image-may-change",
        "Pod",
        lambda o: o["spec"]["initContainers"][0].update(image="busybox:1"),
    ),
    update(
        "tolerations-may-be-added",
        "Pod",
        lambda o: o["spec"]["tolerations"].append({"operator": "Exists", "effect": "NoExecute"}),
    ),
    update("binding-sets-node-name", "Pod", _bind),
    update("vm-may-change", "VmPod", lambda o: vm(o).update(powerSpec="Shutdown")),
    update(
        "vm-may-resize",
        "VmPod",
        lambda o: vm(o).update(resources={"requests": {"cpu": "2", "memory": "1Gi"}}),
    ),
    update("vm-image-is-fixed", "VmPod", lambda o: vm(o).update(image="other"), "spec", FORBIDDEN),
    update("nics-may-be-added", "VmPod", lambda o: o["spec"]["nics"].append({"name": "eth2"})),
    update(
        "container-port",
        "Pod",
        lambda o: ctr(o)["ports"][0].update(containerPort=8080),
        "spec",
        FORBIDDEN,
        POD_CHANGES,
    ),
    update(
        "node-name-once-bound",
        "Pod",
        lambda o: o["spec"].update(nodeName="node-2"),
        "spec",
        FORBIDDEN,
        '`spec.virtualMachine.resources`,`spec.nics`\n- spec.nodeName: "node-1"\n'
        '+ spec.nodeName: "node-2"',
    ),
    update(
        "add-container",
        "Pod",
        lambda o: o["spec"]["containers"].append({"name": "sidecar", "image": "envoy"}),
        "spec.containers",
        FORBIDDEN,
        "pod updates may not add or remove containers",
    ),
    update(
        "toleration-removed",
        "Pod",
        lambda o: o["spec"].update(tolerations=[]),
        "spec.tolerations",
        FORBIDDEN,
        "existing toleration can not be modified except its tolerationSeconds",
    ),
    update(
        "active-deadline-grows",
        "Pod",
        lambda o: o["spec"].update(activeDeadlineSeconds=200),
        "spec.activeDeadlineSeconds",
        INVALID,
        "must be less than or equal to previous value",
    ),
    update(
        "active-deadline-removed",
        "Pod",
        lambda o: o["spec"].pop("activeDeadlineSeconds"),
        "spec.activeDeadlineSeconds",
        INVALID,
        "must not update from a positive integer to nil value",
    ),
    update("active-deadline-shrinks", "Pod", lambda o: o["spec"].update(activeDeadlineSeconds=50)),
    update(
        "nic-port-id",
        "VmPod",
        lambda o: o["spec"]["nics"][0].update(portId="port-2"),
        "spec",
        FORBIDDEN,
        "pod updates may not modify eth0 portId",
    ),
    update(
        "primary-nic-removed",
        "VmPod",
        lambda o: o["spec"]["nics"].pop(0),
        "spec",
        FORBIDDEN,
        "pod updates may not delete primary nic eth0",
    ),
    update(
        "deployment-selector",
        "Deployment",
        lambda o: (
            o["spec"]["selector"]["matchLabels"].update(app="api"),
            o["spec"]["template"]["metadata"]["labels"].update(app="api"),
        ),
        "spec.selector",
        INVALID,
        IMMUTABLE,
    ),
    update("deployment-scale", "Deployment", lambda o: o["spec"].update(replicas=10)),
    update(
        "replica-set-selector",
        "ReplicaSet",
        lambda o: o["spec"]["selector"].update(matchExpressions=[]),
        "spec.selector",
        INVALID,
        IMMUTABLE,
    ),
    update(
        "cluster-ip",
        "Service",
        lambda o: o["spec"].update(clusterIP="10.0.0.11"),
        "spec.clusterIPs[0]",
        INVALID,
        "may not change once set",
    ),
    update(
        "cluster-ip-unset",
        "Service",
        lambda o: o["spec"].pop("clusterIP"),
        "spec.clusterIPs[0]",
        INVALID,
        "primary clusterIP can not be unset",
    ),
    update("service-ports", "Service", lambda o: o["spec"]["ports"][0].update(port=8080)),
    update(
        "secret-type",
        "Secret",
        lambda o: o.update(type="example.com/other"),
        "type",
        INVALID,
        IMMUTABLE,
    ),
    update(
        "node-pod-cidr",
        "Node",
        lambda o: o["spec"].update(podCIDR="10.244.2.0/24"),
        "spec.podCIDR",
        FORBIDDEN,
        'node updates may not change podCIDR except from "" to valid',
    ),
    update("node-taints", "Node", lambda o: o["spec"].update(taints=[])),
]


@pytest.mark.parametrize("case", UPDATES)
def test_update(case: Update) -> None:
    group, kind, old = fixture(case.fixture)
    old["metadata"].update(uid="1", creationTimestamp="2024-05-01T10:00:00Z", generation=2)
    if case.fixture == "Pod":
        old["spec"]["activeDeadlineSeconds"] = 100
        _bind(old)
    if case.fixture == "VmPod":
        old["spec"]["nics"][0]["portId"] = "port-1"
    new = copy.deepcopy(old)
    case.change(new)
    found = validation.validate(group, kind, new, old)
    if case.field is None:
        assert found == [], show(found)
    else:
        assert any(
            e.field == case.field and e.type is case.type and case.detail in e.detail for e in found
        ), show(found)


def test_binding_sets_the_node_once_from_unbound() -> None:
    group, kind, old = fixture("Pod")
    new = copy.deepcopy(old)
    _bind(new)
    assert validation.validate(group, kind, new, old) == []


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_immutable_data(kind: str) -> None:
    group, kind, old = fixture(kind)
    old["immutable"] = True
    changed = copy.deepcopy(old)
    changed["data"]["extra"] = "eA=="
    [error] = validation.validate(group, kind, changed, old)
    assert (error.field, error.type) == ("data", FORBIDDEN)
    assert error.detail == "field is immutable when `immutable` is set"
    unlocked = copy.deepcopy(old)
    unlocked["immutable"] = False
    [error] = validation.validate(group, kind, unlocked, old)
    assert error.field == "immutable"
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"] = {"a": "b"}
    assert validation.validate(group, kind, relabelled, old) == []


# --- Quantities ---------------------------------------------------------------------------

MULTIPLIERS = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "e3": Decimal(10) ** 3,
    "E-2": Decimal("1e-2"),
}


@given(st.integers(min_value=0, max_value=7), st.sampled_from(sorted(MULTIPLIERS)))
def test_small_quantities_are_exact(n: int, suffix: str) -> None:
    assert validation.parse_quantity(f"{n}{suffix}") == n * MULTIPLIERS[suffix]


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(MULTIPLIERS)))
def test_quantity_is_n_times_its_multiplier(n: int, suffix: str) -> None:
    expected = n * MULTIPLIERS[suffix]
    if suffix.endswith("i"):
        expected = min(expected, Decimal(2**63 - 1))
    assert validation.parse_quantity(f"{n}{suffix}") == expected


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=0, max_value=12),
    st.sampled_from(sorted(MULTIPLIERS)),
)
def test_canonical_form_round_trips(mantissa: int, places: int, suffix: str) -> None:
    digits = str(abs(mantissa)).rjust(places + 1, "0")
    number = f"{digits[:-places]}.{digits[-places:]}" if places else digits
    text = ("-" if mantissa < 0 else "") + number + suffix
    with decimal.localcontext(decimal.Context(prec=100)):
        exact = Decimal(mantissa).scaleb(-places) * MULTIPLIERS[suffix]
        # Parsing rounds away from zero to nano units and caps binary SI at 2^63-1.
        expected = exact
        if exact.as_tuple().exponent < -9:  # type: ignore[operator]
            expected = exact.quantize(Decimal("1e-9"), rounding=decimal.ROUND_UP)
    if suffix.endswith("i"):
        expected = max(min(expected, Decimal(2**63 - 1)), Decimal(-(2**63) + 1))
    quantity = Quantity.parse(text)
    assert quantity.value == expected
    canonical = str(quantity)
    again = Quantity.parse(canonical)
    assert again.value == quantity.value
    assert str(again) == canonical
    assert "." not in canonical


@pytest.mark.parametrize(
    ("text", "canonical", "notation"),
    [
        ("0", "0", QuantityFormat.DECIMAL_SI),
        ("1.5", "1500m", QuantityFormat.DECIMAL_SI),
        ("0.5", "500m", QuantityFormat.DECIMAL_SI),
        (".5", "500m", QuantityFormat.DECIMAL_SI),
        ("2000", "2k", QuantityFormat.DECIMAL_SI),
        ("1500", "1500", QuantityFormat.DECIMAL_SI),
        ("1000m", "1", QuantityFormat.DECIMAL_SI),
        ("1.5Gi", "1536Mi", QuantityFormat.BINARY_SI),
        ("1024Mi", "1Gi", QuantityFormat.BINARY_SI),
        ("0.5Ki", "512", QuantityFormat.BINARY_SI),
        ("1e3", "1e3", QuantityFormat.DECIMAL_EXPONENT),
        ("12e6", "12e6", QuantityFormat.DECIMAL_EXPONENT),
        ("1E", "1E", QuantityFormat.DECIMAL_SI),
        ("-1.5", "-1500m", QuantityFormat.DECIMAL_SI),
        ("0.0000000001", "1n", QuantityFormat.DECIMAL_SI),
        ("9Ei", "9223372036854775807", QuantityFormat.BINARY_SI),
        (" 100m ", "100m", QuantityFormat.DECIMAL_SI),
    ],
)
def test_canonical_form(text: str, canonical: str, notation: QuantityFormat) -> None:
    quantity = Quantity.parse(text)
    assert (str(quantity), quantity.format) == (canonical, notation)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "quantities must match the regular expression"),
        ("abc", "quantities must match the regular expression"),
        ("1.5.5", "quantities must match the regular expression"),
        ("1m3", "unable to parse quantity's suffix"),
        ("1ki", "unable to parse quantity's suffix"),
        ("1e", "unable to parse quantity's suffix"),
        ("--1", "unable to parse quantity's suffix"),
    ],
)
def test_bad_quantities(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match="^" + message):
        validation.parse_quantity(text)


def test_quantities_round_up_to_milli_units() -> None:
    assert str(Quantity.parse("0.0001").round_up(3)) == "1m"
    assert str(Quantity.parse("-0.0001").round_up(3)) == "-1m"
    assert str(Quantity.parse("1.0001Ki").round_up(3)) == "1024103m"


# --- Names --------------------------------------------------------------------------------

LABELS = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


@given(LABELS)
def test_generated_labels_are_valid_names(label: str) -> None:
    assert validation.dns1123_label_problems(label) == []
    assert validation.dns1123_subdomain_problems(label) == []
    namespace = {"metadata": {"name": label, "tenant": "system"}}
    defaults.apply_defaults("", "Namespace", namespace)
    assert validation.validate("", "Namespace", namespace, None) == []


@given(LABELS, st.data())
def test_an_uppercase_letter_makes_a_label_invalid(label: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(label)))
    bad = label[:at] + data.draw(st.sampled_from("ABCXYZ")) + label[at:]
    assert validation.dns1123_label_problems(bad)
    assert validation.dns1123_subdomain_problems(bad)


@given(LABELS)
def test_a_leading_hyphen_makes_a_label_invalid(label: str) -> None:
    assert validation.dns1123_label_problems("-" + label)
    assert validation.dns1035_label_problems("-" + label)


@given(st.lists(LABELS, min_size=1, max_size=4))
def test_dotted_labels_are_subdomains_not_labels(labels: list[str]) -> None:
    name = ".".join(labels)
    assert validation.dns1123_subdomain_problems(name) == []
    if len(labels) > 1:
        assert validation.dns1123_label_problems(name)[-1:] == ["must not contain dots"]


# --- Robustness: any JSON is reported on, never raised on --------------------------------

FIELD_NAMES = st.sampled_from(
    [
        "name",
        "image",
        "containers",
        "initContainers",
        "ports",
        "port",
        "containerPort",
        "protocol",
        "env",
        "valueFrom",
        "resources",
        "limits",
        "requests",
        "cpu",
        "volumes",
        "volumeMounts",
        "virtualMachine",
        "nics",
        "tolerations",
        "selector",
        "matchLabels",
        "matchExpressions",
        "template",
        "metadata",
        "labels",
        "spec",
        "strategy",
        "rollingUpdate",
        "maxSurge",
        "type",
        "clusterIP",
        "targetPort",
        "data",
        "finalizers",
        "userData",
        "subsets",
        "addresses",
        "involvedObject",
        "snapshotAction",
        "emptyDir",
        "httpGet",
        "livenessProbe",
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(FIELD_NAMES | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FIXTURES)), st.dictionaries(FIELD_NAMES, JSON, max_size=4))
def test_any_json_is_reported_not_raised(name: str, junk: dict[str, Any]) -> None:
    group, kind, obj = fixture(name)
    spec = obj.get("spec")
    target = spec if isinstance(spec, dict) else obj
    target.update(junk)
    defaults.apply_defaults(group, kind, obj)
    found = validation.validate(group, kind, obj, copy.deepcopy(obj))
    assert all(isinstance(e, errors.FieldError) for e in found)


def test_public_api() -> None:
    assert sorted(validation.__all__) == [
        "Quantity",
        "QuantityError",
        "QuantityFormat",
        "VOLUME_SOURCES",
        "dns1035_label_problems",
        "dns1123_label_problems",
        "dns1123_subdomain_problems",
        "parse_quantity",
        "validate",
    ]
