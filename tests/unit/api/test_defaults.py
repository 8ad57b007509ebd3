"""Defaults: objects read back as kube-apiserver 1.32 (and Arktos) would show them."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from arktos_lite.api import _defaults as defaults, _validation as validation

Obj = dict[str, Any]


def defaulted(group: str, kind: str, obj: Obj) -> Obj:
    result = copy.deepcopy(obj)
    defaults.apply_defaults(group, kind, result)
    return result


META = {"name": "web", "namespace": "default", "tenant": "system"}

CONTAINER_DEFAULTS = {
    "imagePullPolicy": "IfNotPresent",
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "resources": {},
}
POD_SPEC_DEFAULTS = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "securityContext": {},
}


def test_minimal_pod() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": META,
        "spec": {
            "containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]
        },
    }
    assert defaulted("", "Pod", pod) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": META,
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    **CONTAINER_DEFAULTS,
                    "imagePullPolicy": "Always",
                }
            ],
            **POD_SPEC_DEFAULTS,
            "enableServiceLinks": True,
        },
    }


def test_vm_pod() -> None:
    pod = {
        "metadata": META,
        "spec": {"virtualMachine": {"name": "vm", "image": "cirros:latest", "keyPairName": "k"}},
    }
    assert defaulted("", "Pod", pod)["spec"] == {
        "virtualMachine": {
            "name": "vm",
            "image": "cirros:latest",
            "keyPairName": "k",
            # Arktos pulls a VM image once, whatever its tag.
            "imagePullPolicy": "IfNotPresent",
            "powerSpec": "Running",
            "shutdownBehavior": "stop",
            "resources": {},
        },
        **POD_SPEC_DEFAULTS,
        "enableServiceLinks": True,
    }


def test_minimal_service() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": META,
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    assert defaulted("", "Service", service) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": META,
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"],
        },
    }


def test_minimal_deployment() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": META,
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "resources": {"limits": {"cpu": "0.5"}},
                        }
                    ]
                },
            },
        },
    }
    assert defaulted("apps", "Deployment", deployment) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": META,
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            **CONTAINER_DEFAULTS,
                            # Templates get no requests from limits; pods made from them do.
                            "resources": {"limits": {"cpu": "500m"}},
                        }
                    ],
                    **POD_SPEC_DEFAULTS,
                },
            },
        },
    }


def test_secret_with_string_data() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": META,
        "data": {"password": base64.b64encode(b"old").decode(), "token": "dA=="},
        "stringData": {"password": "s3cret", "user": "admin"},
    }
    assert defaulted("", "Secret", secret) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": META,
        "type": "Opaque",
        "data": {
            "password": base64.b64encode(b"s3cret").decode(),
            "user": base64.b64encode(b"admin").decode(),
            "token": "dA==",
        },
    }


def test_tenant() -> None:
    tenant = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "t1"}}
    assert defaulted("", "Tenant", tenant) == {
        "apiVersion": "v1",
        "kind": "Tenant",
        "metadata": {"name": "t1"},
        "spec": {"finalizers": ["arktos"], "storageClusterId": "0"},
    }


def test_replica_set() -> None:
    replica_set = {
        "metadata": META,
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {}}},
    }
    assert defaulted("apps", "ReplicaSet", replica_set)["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"creationTimestamp": None}, "spec": POD_SPEC_DEFAULTS},
    }


def test_namespace() -> None:
    namespace = {"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "x"}}}
    assert defaulted("", "Namespace", namespace) == {
        "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
        "spec": {"finalizers": ["kubernetes"]},
    }


def test_finalized_namespaces_and_tenants_stay_finalized() -> None:
    # The finalize subresource empties the list; later updates must not bring it back.
    for kind in ("Namespace", "Tenant"):
        obj = {"metadata": {"name": "x"}, "spec": {"finalizers": [], "storageClusterId": "1"}}
        assert defaulted("", kind, obj)["spec"]["finalizers"] == []


def test_node_allocatable_defaults_to_capacity() -> None:
    node = {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": 4, "memory": "8192Mi"}}}
    assert defaulted("", "Node", node)["status"] == {
        "capacity": {"cpu": "4", "memory": "8Gi"},
        "allocatable": {"cpu": "4", "memory": "8Gi"},
    }


def test_endpoints_ports_are_tcp() -> None:
    endpoints = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    assert defaulted("", "Endpoints", endpoints)["subsets"][0]["ports"] == [
        {"port": 80, "protocol": "TCP"}
    ]


def test_event_fields_go_always_serializes() -> None:
    event = {"metadata": META, "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "X"}
    assert defaulted("", "Event", event) == {
        **event,
        "reportingComponent": "",
        "reportingInstance": "",
        "eventTime": None,
        "source": {},
    }


def test_controller_instance() -> None:
    instance = {"metadata": {"name": "replicaset-1"}, "controllerType": "ReplicaSet"}
    assert defaulted("", "ControllerInstance", instance) == {
        **instance,
        "controllerKey": 0,
        "workloadNum": 0,
        "isLocked": False,
    }


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("", "Action"),
        ("coordination.k8s.io", "Lease"),
        ("example.com", "Widget"),
    ],
)
def test_kinds_without_defaults_are_untouched(group: str, kind: str) -> None:
    obj = {"metadata": META, "spec": {"holderIdentity": "x"}, "data": {"a": "b"}}
    assert defaulted(group, kind, obj) == obj


# --- Pod details ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("docker.io/library/nginx", "Always"),
        ("localhost:5000/team/app", "Always"),
        ("localhost:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
        ("Nginx", "IfNotPresent"),  # not a valid reference
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert defaults.image_pull_policy(image) == policy


def test_pods_copy_limits_into_missing_requests() -> None:
    pod = {
        "metadata": META,
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i:1",
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1.5Gi"},
                        "requests": {"cpu": 0.25},
                    },
                }
            ]
        },
    }
    resources = defaulted("", "Pod", pod)["spec"]["containers"][0]["resources"]
    assert resources == {
        "limits": {"cpu": "1", "memory": "1536Mi"},
        "requests": {"cpu": "250m", "memory": "1536Mi"},
    }


def test_quantities_are_rounded_up_to_milli_units() -> None:
    pod = {
        "metadata": META,
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i:1",
                    "resources": {"requests": {"cpu": "0.0001", "memory": "1e9", "x": "bad"}},
                }
            ],
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "0.5Gi"}}],
        },
    }
    spec = defaulted("", "Pod", pod)["spec"]
    assert spec["containers"][0]["resources"]["requests"] == {
        "cpu": "1m",
        "memory": "1e9",
        "x": "bad",  # left for validation to report
    }
    assert spec["volumes"][0]["emptyDir"] == {"sizeLimit": "512Mi"}


def test_host_network_pods_expose_container_ports_on_the_host() -> None:
    pod = {
        "metadata": META,
        "spec": {
            "hostNetwork": True,
            "containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 53}]}],
        },
    }
    port = defaulted("", "Pod", pod)["spec"]["containers"][0]["ports"][0]
    assert port == {"containerPort": 53, "hostPort": 53, "protocol": "TCP"}


def test_probes_handlers_and_env() -> None:
    container = {
        "name": "c",
        "image": "i:1",
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 3},
        "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/quit"}}},
        "env": [
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    pod = {"metadata": META, "spec": {"containers": [container]}}
    result = defaulted("", "Pod", pod)["spec"]["containers"][0]
    probe_defaults = {"timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    assert result["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "periodSeconds": 10,
        **probe_defaults,
    }
    assert result["readinessProbe"] == {
        "tcpSocket": {"port": 8080},
        "periodSeconds": 3,
        **probe_defaults,
    }
    assert result["lifecycle"]["preStop"]["httpGet"] == {
        "port": 8080,
        "path": "/quit",
        "scheme": "HTTP",
    }
    assert result["env"][0]["valueFrom"]["fieldRef"] == {
        "fieldPath": "spec.nodeName",
        "apiVersion": "v1",
    }
    assert result["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"


def test_volumes() -> None:
    pod = {
        "metadata": META,
        "spec": {
            "containers": [{"name": "c", "image": "i:1"}],
            "volumes": [
                {"name": "plain"},
                {"name": "secret", "secret": {"secretName": "s"}},
                {"name": "config", "configMap": {"name": "c", "defaultMode": 0o400}},
                {"name": "host", "hostPath": {"path": "/srv"}},
                {
                    "name": "projected",
                    "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
                },
            ],
        },
    }
    volumes = defaulted("", "Pod", pod)["spec"]["volumes"]
    assert volumes == [
        {"name": "plain", "emptyDir": {}},
        {"name": "secret", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "config", "configMap": {"name": "c", "defaultMode": 0o400}},
        {"name": "host", "hostPath": {"path": "/srv", "type": ""}},
        {
            "name": "projected",
            "projected": {
                "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
                "defaultMode": 420,
            },
        },
    ]


def test_explicit_values_are_kept() -> None:
    pod = {
        "metadata": META,
        "spec": {
            "restartPolicy": "Never",
            "dnsPolicy": "Default",
            "terminationGracePeriodSeconds": 0,
            "enableServiceLinks": False,
            "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}],
        },
    }
    spec = defaulted("", "Pod", pod)["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"]) == ("Never", "Default")
    assert (spec["terminationGracePeriodSeconds"], spec["enableServiceLinks"]) == (0, False)
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


# --- Service details ------------------------------------------------------------------------


def test_load_balancer_service() -> None:
    service = {
        "metadata": META,
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": "https"}]},
    }
    spec = defaulted("", "Service", service)["spec"]
    assert spec["ports"] == [{"port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["internalTrafficPolicy"] == "Cluster"


def test_client_ip_affinity_gets_a_timeout() -> None:
    service = {"metadata": META, "spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}}
    spec = defaulted("", "Service", service)["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_no_affinity_drops_affinity_config() -> None:
    service = {
        "metadata": META,
        "spec": {
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}},
            "ports": [{"port": 1}],
        },
    }
    assert "sessionAffinityConfig" not in defaulted("", "Service", service)["spec"]


def test_headless_service_without_selector_is_dual_stack() -> None:
    service = {"metadata": META, "spec": {"clusterIP": "None"}}
    spec = defaulted("", "Service", service)["spec"]
    assert (spec["ipFamilyPolicy"], spec["ipFamilies"]) == ("RequireDualStack", ["IPv4"])


def test_ipv6_cluster_ip_picks_the_family() -> None:
    service = {"metadata": META, "spec": {"clusterIP": "fd00::10", "ports": [{"port": 1}]}}
    assert defaulted("", "Service", service)["spec"]["ipFamilies"] == ["IPv6"]


def test_external_name_service() -> None:
    service = {"metadata": META, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert defaulted("", "Service", service)["spec"] == {
        "type": "ExternalName",
        "externalName": "db.example.com",
        "sessionAffinity": "None",
    }


def test_recreate_deployments_get_no_rolling_update() -> None:
    deployment = {"metadata": META, "spec": {"strategy": {"type": "Recreate"}}}
    assert defaulted("apps", "Deployment", deployment)["spec"]["strategy"] == {"type": "Recreate"}


def test_secret_string_data_of_the_wrong_type_is_left_for_validation() -> None:
    secret = {"metadata": META, "stringData": {"a": 1}}
    result = defaulted("", "Secret", secret)
    assert result["stringData"] == {"a": 1}
    assert "data" not in result


# --- Properties -------------------------------------------------------------------------------

KINDS = [
    ("", "Pod"),
    ("", "Service"),
    ("", "Secret"),
    ("", "Namespace"),
    ("", "Tenant"),
    ("", "Node"),
    ("", "Endpoints"),
    ("", "Event"),
    ("", "ControllerInstance"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "containers",
                    "name",
                    "image",
                    "resources",
                    "limits",
                    "ports",
                    "port",
                    "targetPort",
                    "template",
                    "strategy",
                    "volumes",
                    "virtualMachine",
                    "stringData",
                    "data",
                    "status",
                    "capacity",
                    "subsets",
                    "metadata",
                    "sessionAffinity",
                    "type",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.dictionaries(
        st.sampled_from(["spec", "status", "metadata", "data", "stringData", "subsets", "type"]),
        JSON,
    ),
)
def test_defaults_never_raise_and_are_idempotent(kind: tuple[str, str], obj: Obj) -> None:
    once = defaulted(*kind, obj)
    assert defaulted(*kind, once) == once


@pytest.mark.parametrize(
    ("group", "kind", "obj"),
    [
        (
            "",
            "Pod",
            {
                "spec": {
                    "containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": 2}}}]
                }
            },
        ),
        ("", "Pod", {"spec": {"virtualMachine": {"name": "v", "image": "i", "publicKey": "k"}}}),
        ("", "Service", {"spec": {"ports": [{"port": 80}]}}),
        (
            "apps",
            "Deployment",
            {
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                    },
                }
            },
        ),
        ("", "Secret", {"stringData": {"k": "v"}}),
        ("", "Namespace", {}),
    ],
)
def test_defaulted_minimal_objects_are_valid(group: str, kind: str, obj: Obj) -> None:
    meta = {"name": "x", "tenant": "system"}
    if kind not in ("Namespace",):
        meta["namespace"] = "default"
    result = defaulted(group, kind, {"metadata": meta, **obj})
    assert validation.validate(group, kind, result, None) == []


def test_public_api() -> None:
    assert sorted(defaults.__all__) == ["apply_defaults", "image_pull_policy"]
