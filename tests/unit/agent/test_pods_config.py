"""What the agent tells the runtime about a pod: labels, annotations, paths, resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arktos_lite.agent import _podconfig as podconfig
from arktos_lite.runtime.cri import api_pb2 as cri

Obj = dict[str, Any]


def pod_object(**spec: Any) -> Obj:
    return {
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "tenant": "t1",
            "uid": "u1",
            "labels": {"app": "web"},
            "annotations": {"note": "x"},
        },
        "spec": {"containers": [{"name": "app", "image": "nginx:1"}], **spec},
    }


def test_sandbox_config_names_the_pod_and_its_log_directory(tmp_path: Path) -> None:
    config = podconfig.sandbox_config(pod_object(), root_dir=tmp_path, attempt=2)
    assert (config.metadata.name, config.metadata.uid, config.metadata.namespace) == (
        "web",
        "u1",
        "prod",
    )
    assert config.metadata.attempt == 2
    assert config.metadata.tenant == "t1"
    assert config.log_directory == str(tmp_path / "pods" / "t1_prod_web_u1" / "logs")
    assert config.labels["app"] == "web"
    assert config.labels[podconfig.POD_UID] == "u1"
    assert config.labels[podconfig.POD_TENANT] == "t1"
    assert config.annotations["note"] == "x"
    # The node's network, and so the node's host name, until pods get networks of their own.
    assert config.linux.security_context.namespace_options.network == cri.NODE
    assert config.hostname == ""


def test_container_config_carries_what_a_restarted_agent_needs() -> None:
    container = {
        "name": "app",
        "image": "nginx:1",
        "workingDir": "/srv",
        "lifecycle": {"preStop": {"exec": {"command": ["stop"]}}},
    }
    pod = pod_object(terminationGracePeriodSeconds=12)
    config = podconfig.container_config(
        pod,
        container,
        init=False,
        restart_count=3,
        envs=[("A", "1")],
        command=["run"],
        args=["--fast"],
        mounts=[],
    )
    assert (config.metadata.name, config.metadata.attempt) == ("app", 3)
    assert config.log_path == "app/3.log"
    assert config.image.image == "nginx:1"
    assert (list(config.command), list(config.args), config.working_dir) == (
        ["run"],
        ["--fast"],
        "/srv",
    )
    assert [(kv.key, kv.value) for kv in config.envs] == [("A", "1")]
    assert config.labels[podconfig.CONTAINER_NAME] == "app"
    assert config.labels[podconfig.POD_UID] == "u1"
    assert podconfig.CONTAINER_TYPE not in config.labels
    annotations = config.annotations
    assert annotations[podconfig.RESTART_COUNT] == "3"
    assert annotations[podconfig.TERMINATION_GRACE_PERIOD] == "12"
    assert annotations[podconfig.TERMINATION_MESSAGE_PATH] == "/dev/termination-log"
    assert json.loads(annotations[podconfig.PRE_STOP_HANDLER]) == {"exec": {"command": ["stop"]}}
    assert annotations[podconfig.CONTAINER_HASH] == podconfig.container_hash(container)
    init = podconfig.container_config(
        pod, container, init=True, restart_count=0, envs=[], command=[], args=[], mounts=[]
    )
    assert init.labels[podconfig.CONTAINER_TYPE] == "init"


@pytest.mark.parametrize(
    ("resources", "shares", "quota", "memory"),
    [
        ({}, 2, 0, 0),
        ({"requests": {"cpu": "250m"}}, 256, 0, 0),
        ({"limits": {"cpu": "500m", "memory": "64Mi"}}, 512, 50_000, 64 * 2**20),
        ({"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}, 1024, 200_000, 0),
        ({"limits": {"cpu": "1m"}}, 2, 1000, 0),
    ],
)
def test_linux_resources(resources: Obj, shares: int, quota: int, memory: int) -> None:
    found = podconfig.linux_resources({"name": "c", "resources": resources})
    assert found.cpu_shares == shares
    assert found.cpu_quota == quota
    assert found.cpu_period == (podconfig.CPU_PERIOD if quota else 0)
    assert found.memory_limit_in_bytes == memory


def test_vm_pod_runs_its_virtual_machine() -> None:
    pod = pod_object()
    del pod["spec"]["containers"]
    pod["spec"]["virtualMachine"] = {"name": "vm1", "image": "cirros", "keyPairName": "k"}
    [container] = podconfig.app_containers(pod)
    assert container["name"] == "vm1"
    config = podconfig.container_config(
        pod, container, init=False, restart_count=0, envs=[], command=[], args=[], mounts=[]
    )
    assert json.loads(config.annotations[podconfig.VIRTUAL_MACHINE])["name"] == "vm1"


def test_grace_period_prefers_the_deletion() -> None:
    pod = pod_object(terminationGracePeriodSeconds=20)
    assert podconfig.grace_period(pod) == 20
    pod["metadata"]["deletionGracePeriodSeconds"] = 3
    assert podconfig.grace_period(pod) == 3
    assert podconfig.grace_period({"metadata": {}, "spec": {}}) == 30
    ref = podconfig.PodRef.of(pod)
    assert str(ref) == "web_prod(u1)"
    assert ref.key == "t1/prod/web"
