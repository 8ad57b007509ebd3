"""The CRI proto is Kubernetes' runtime.v1 on the wire, plus Arktos' VM calls.

Field numbers are wire facts: a wrong one silently swaps fields with containerd. These
pin the ones the agent relies on to upstream's numbers (k8s.io/cri-api runtime/v1).
"""

from __future__ import annotations

import pytest

from arktos_lite.runtime.cri import api_pb2 as cri, api_pb2_grpc


def test_services_are_runtime_v1() -> None:
    services = cri.DESCRIPTOR.services_by_name
    assert services["RuntimeService"].full_name == "runtime.v1.RuntimeService"
    assert services["ImageService"].full_name == "runtime.v1.ImageService"
    assert cri.DESCRIPTOR.package == "runtime.v1"


def test_the_calls_the_agent_makes_exist() -> None:
    runtime_calls = {m.name for m in cri.DESCRIPTOR.services_by_name["RuntimeService"].methods}
    image_calls = {m.name for m in cri.DESCRIPTOR.services_by_name["ImageService"].methods}
    assert {
        "Version",
        "Status",
        "RunPodSandbox",
        "StopPodSandbox",
        "RemovePodSandbox",
        "PodSandboxStatus",
        "ListPodSandbox",
        "CreateContainer",
        "StartContainer",
        "StopContainer",
        "RemoveContainer",
        "ListContainers",
        "ContainerStatus",
        "UpdateContainerResources",
        "ReopenContainerLog",
        "ExecSync",
        "Exec",
        "Attach",
        "PortForward",
        "ContainerStats",
        "ListContainerStats",
        "PodSandboxStats",
        "UpdateRuntimeConfig",
        "RebootVM",
        "CreateSnapshot",
        "RestoreToSnapshot",
        "PauseVM",
        "ResumeVM",
        "SuspendVM",
    } <= runtime_calls
    assert image_calls == {"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}
    assert hasattr(api_pb2_grpc, "add_RuntimeServiceServicer_to_server")
    assert hasattr(api_pb2_grpc, "add_ImageServiceServicer_to_server")


# (message, field, number) from upstream runtime.v1, and Arktos' v1alpha2 for the VM calls.
UPSTREAM_NUMBERS = [
    ("PodSandboxConfig", "metadata", 1),
    ("PodSandboxConfig", "hostname", 2),
    ("PodSandboxConfig", "log_directory", 3),
    ("PodSandboxConfig", "dns_config", 4),
    ("PodSandboxConfig", "port_mappings", 5),
    ("PodSandboxConfig", "labels", 6),
    ("PodSandboxConfig", "annotations", 7),
    ("PodSandboxConfig", "linux", 8),
    ("PodSandboxMetadata", "attempt", 4),
    ("PodSandboxMetadata", "tenant", 5),
    ("LinuxPodSandboxConfig", "cgroup_parent", 1),
    ("LinuxPodSandboxConfig", "security_context", 2),
    ("LinuxPodSandboxConfig", "sysctls", 3),
    ("LinuxSandboxSecurityContext", "namespace_options", 1),
    ("LinuxSandboxSecurityContext", "run_as_group", 8),
    ("LinuxSandboxSecurityContext", "seccomp", 9),
    ("RunPodSandboxRequest", "runtime_handler", 2),
    ("PodSandboxStatus", "network", 5),
    ("PodSandboxStatus", "linux", 6),
    ("PodSandboxStatus", "runtime_handler", 9),
    ("PodSandboxNetworkStatus", "additional_ips", 2),
    ("Namespace", "options", 2),
    ("ContainerConfig", "image", 2),
    ("ContainerConfig", "command", 3),
    ("ContainerConfig", "args", 4),
    ("ContainerConfig", "working_dir", 5),
    ("ContainerConfig", "envs", 6),
    ("ContainerConfig", "mounts", 7),
    ("ContainerConfig", "devices", 8),
    ("ContainerConfig", "labels", 9),
    ("ContainerConfig", "annotations", 10),
    ("ContainerConfig", "log_path", 11),
    ("ContainerConfig", "stdin", 12),
    ("ContainerConfig", "stdin_once", 13),
    ("ContainerConfig", "tty", 14),
    ("ContainerConfig", "linux", 15),
    ("LinuxContainerSecurityContext", "run_as_group", 12),
    ("LinuxContainerSecurityContext", "no_new_privs", 11),
    ("ImageSpec", "user_specified_image", 18),
    ("ImageSpec", "runtime_handler", 19),
    ("ContainerStatus", "exit_code", 7),
    ("ContainerStatus", "reason", 10),
    ("ContainerStatus", "mounts", 14),
    ("ContainerStatus", "log_path", 15),
    ("ContainerStatus", "resources", 16),
    ("ContainerStatus", "image_id", 17),
    ("Container", "image_id", 10),
    ("Mount", "propagation", 5),
    ("Mount", "uidMappings", 6),
    ("MemoryUsage", "working_set_bytes", 2),
    ("MemoryUsage", "usage_bytes", 4),
    ("MemoryUsage", "rss_bytes", 5),
    ("ContainerStats", "writable_layer", 4),
    ("ExecSyncRequest", "timeout", 3),
    ("ExecRequest", "stderr", 6),
    ("AttachRequest", "stdout", 4),
    ("StatusResponse", "info", 2),
    ("UpdateContainerResourcesRequest", "annotations", 4),
    ("RebootVMRequest", "vm_id", 1),
    ("RebootVMRequest", "rebootSpec", 2),
    ("CreateSnapshotRequest", "snapshotID", 2),
    ("RestoreToSnapshotRequest", "flags", 3),
    # arktos-lite's own power calls.
    ("PauseVMRequest", "vm_id", 1),
    ("ResumeVMRequest", "vm_id", 1),
    ("SuspendVMRequest", "vm_id", 1),
]


@pytest.mark.parametrize(("message", "field", "number"), UPSTREAM_NUMBERS)
def test_field_numbers_are_upstreams(message: str, field: str, number: int) -> None:
    assert cri.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number == number


def test_enums_are_upstreams() -> None:
    assert cri.CONTAINER_EXITED == 2
    assert cri.CONTAINER_UNKNOWN == 3
    assert cri.SANDBOX_NOTREADY == 1
    assert cri.NODE == 2
    assert cri.TARGET == 3


def test_a_config_survives_the_wire() -> None:
    config = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name="web", attempt=2),
        image=cri.ImageSpec(image="busybox"),
        command=["sh", "-c"],
        args=["echo hi"],
        envs=[cri.KeyValue(key="A", value="1")],
        mounts=[cri.Mount(container_path="/data", host_path="/tmp/data", readonly=True)],
        labels={"io.kubernetes.container.name": "web"},
        log_path="web/2.log",
        linux=cri.LinuxContainerConfig(
            resources=cri.LinuxContainerResources(memory_limit_in_bytes=1 << 20)
        ),
    )
    assert cri.ContainerConfig.FromString(config.SerializeToString()) == config
