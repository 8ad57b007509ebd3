"""What the agent tells a runtime about a pod: sandbox and container configs, as kubelet.

Pure functions from the pod object to CRI messages. Guarantees:

* Sandboxes carry the labels `io.kubernetes.pod.{name,namespace,uid,tenant}` and
  containers additionally `io.kubernetes.container.name` (and `.type=init` for init
  containers), so that a restarted agent finds its pods by `io.kubernetes.pod.uid` alone.
* Container annotations record what a restarted agent needs without the pod object:
  restart count, spec hash, termination message path and policy, the preStop handler
  (JSON) and the pod's termination grace period.
* Logs go to `<root>/pods/<tenant>_<namespace>_<name>_<uid>/logs/<container>/<restarts>.log`.
* A VM pod runs one container named after its virtual machine, whose spec travels as JSON
  in the annotation `arktos.futurewei.com/virtual-machine` for the VM runtime to read;
  its network ports (the NICs of `spec.nics` whose `status.nicStatuses` entry has the
  same `portId` and a MAC address) in `arktos.futurewei.com/nics`, to get a NIC each.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from arktos_lite.api import _validation as validation, resources
from arktos_lite.runtime.cri import api_pb2 as cri

Obj = dict[str, Any]

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
POD_TENANT = "io.kubernetes.pod.tenant"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_TYPE = "io.kubernetes.container.type"
CONTAINER_TYPE_INIT = "init"
RESTART_COUNT = "io.kubernetes.container.restartCount"
CONTAINER_HASH = "io.kubernetes.container.hash"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
PRE_STOP_HANDLER = "io.kubernetes.container.preStopHandler"
TERMINATION_GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
VIRTUAL_MACHINE = "arktos.futurewei.com/virtual-machine"
VM_NICS = "arktos.futurewei.com/nics"

DEFAULT_GRACE_PERIOD = 30
CPU_PERIOD = 100_000
MIN_CPU_SHARES = 2
MIN_CPU_QUOTA = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class PodRef:
    """Where a pod is: the parts of its key, and its uid."""

    tenant: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodRef:
        meta = pod.get("metadata") or {}
        return cls(
            tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
            namespace=meta.get("namespace") or "default",
            name=meta.get("name") or "",
            uid=meta.get("uid") or "",
        )

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.namespace}/{self.name}"

    @property
    def dir_name(self) -> str:
        return f"{self.tenant}_{self.namespace}_{self.name}_{self.uid}"

    def __str__(self) -> str:
        # As kubelet names a pod in messages: name_namespace(uid).
        return f"{self.name}_{self.namespace}({self.uid})"


def pod_dir(root_dir: Path, ref: PodRef) -> Path:
    return root_dir / "pods" / ref.dir_name


def log_directory(root_dir: Path, ref: PodRef) -> Path:
    return pod_dir(root_dir, ref) / "logs"


def log_path(container_name: str, restart_count: int) -> str:
    return f"{container_name}/{restart_count}.log"


def grace_period(pod: Mapping[str, Any]) -> int:
    """The seconds a deleted pod's containers get: the deletion's, else the spec's."""
    meta = pod.get("metadata") or {}
    given = meta.get("deletionGracePeriodSeconds")
    if given is None:
        given = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_PERIOD if given is None else max(0, int(given))


# Containers of a pod


def vm_container(pod: Mapping[str, Any]) -> Obj | None:
    """The one container a VM pod runs, or None for a container pod."""
    vm = (pod.get("spec") or {}).get("virtualMachine")
    if not vm:
        return None
    container: Obj = {
        "name": vm.get("name") or "vm",
        "image": vm.get("image") or "",
        "imagePullPolicy": vm.get("imagePullPolicy") or "IfNotPresent",
    }
    if vm.get("resources"):
        container["resources"] = vm["resources"]
    return container


def app_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod's app containers: its spec's, or the VM's one."""
    vm = vm_container(pod)
    if vm is not None:
        return [vm]
    return list((pod.get("spec") or {}).get("containers") or ())


def init_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((pod.get("spec") or {}).get("initContainers") or ())


def container_hash(container: Mapping[str, Any]) -> str:
    """A short, stable digest of a container's spec."""
    encoded = orjson.dumps(container, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:8]


# Sandbox


def sandbox_labels(ref: PodRef) -> dict[str, str]:
    return {
        POD_NAME: ref.name,
        POD_NAMESPACE: ref.namespace,
        POD_UID: ref.uid,
        POD_TENANT: ref.tenant,
    }


def sandbox_config(pod: Mapping[str, Any], *, root_dir: Path, attempt: int) -> cri.PodSandboxConfig:
    ref = PodRef.of(pod)
    meta = pod.get("metadata") or {}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels.update(sandbox_labels(ref))
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(
            name=ref.name,
            uid=ref.uid,
            namespace=ref.namespace,
            attempt=attempt,
            tenant=ref.tenant,
        ),
        # Every pod shares the node's network until pod networking attaches pods to their
        # own; with it, the host name is the node's, as for kubelet's hostNetwork pods
        # (runc refuses to set one without a UTS namespace of its own).
        hostname="",
        log_directory=str(log_directory(root_dir, ref)),
        labels=labels,
        annotations=annotations,
        linux=cri.LinuxPodSandboxConfig(
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE)
            )
        ),
    )


# Containers


def _milli(listed: Mapping[str, Any] | None, name: str) -> int | None:
    if not listed or listed.get(name) is None:
        return None
    try:
        return int(validation.parse_quantity(str(listed[name])) * 1000)
    except validation.QuantityError:
        return None


def linux_resources(container: Mapping[str, Any]) -> cri.LinuxContainerResources:
    """cgroup settings from the container's requests and limits, as kubelet computes them."""
    resources_ = container.get("resources") or {}
    requests = resources_.get("requests") or {}
    limits = resources_.get("limits") or {}
    cpu_request = _milli(requests, "cpu")
    cpu_limit = _milli(limits, "cpu")
    if cpu_request is None:
        cpu_request = cpu_limit
    memory_limit = _milli(limits, "memory")
    result = cri.LinuxContainerResources(
        cpu_shares=max(MIN_CPU_SHARES, (cpu_request or 0) * 1024 // 1000)
    )
    if cpu_limit:
        result.cpu_period = CPU_PERIOD
        result.cpu_quota = max(MIN_CPU_QUOTA, cpu_limit * CPU_PERIOD // 1000)
    if memory_limit:
        result.memory_limit_in_bytes = memory_limit // 1000
    return result


def container_labels(ref: PodRef, name: str, *, init: bool) -> dict[str, str]:
    labels = {
        CONTAINER_NAME: name,
        POD_UID: ref.uid,
        POD_NAME: ref.name,
        POD_NAMESPACE: ref.namespace,
        POD_TENANT: ref.tenant,
    }
    if init:
        labels[CONTAINER_TYPE] = CONTAINER_TYPE_INIT
    return labels


def vm_ports(pod: Mapping[str, Any]) -> list[Obj]:
    """The pod's NICs that have a network port with a known MAC address, in spec order."""
    statuses = {
        s.get("name"): s
        for s in (pod.get("status") or {}).get("nicStatuses") or ()
        if isinstance(s, dict)
    }
    ports = []
    for nic in (pod.get("spec") or {}).get("nics") or ():
        if not isinstance(nic, dict):
            continue
        status = statuses.get(nic.get("name")) or {}
        port = nic.get("portId")
        if port and status.get("portId") == port and status.get("macAddress"):
            ports.append({"name": nic["name"], "portId": port, "macAddress": status["macAddress"]})
    return ports


def container_config(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    init: bool,
    restart_count: int,
    envs: Sequence[tuple[str, str]],
    command: Sequence[str],
    args: Sequence[str],
    mounts: Sequence[cri.Mount],
) -> cri.ContainerConfig:
    """The CRI config of one container; `command` and `args` are already expanded."""
    ref = PodRef.of(pod)
    name = container.get("name") or ""
    annotations = {
        RESTART_COUNT: str(restart_count),
        CONTAINER_HASH: container_hash(container),
        TERMINATION_MESSAGE_PATH: container.get("terminationMessagePath") or "/dev/termination-log",
        TERMINATION_MESSAGE_POLICY: container.get("terminationMessagePolicy") or "File",
        TERMINATION_GRACE_PERIOD: str(grace_period(pod)),
    }
    pre_stop = (container.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        annotations[PRE_STOP_HANDLER] = orjson.dumps(pre_stop).decode()
    vm = (pod.get("spec") or {}).get("virtualMachine")
    if vm:
        annotations[VIRTUAL_MACHINE] = orjson.dumps(vm).decode()
        ports = vm_ports(pod)
        if ports:
            annotations[VM_NICS] = orjson.dumps(ports).decode()
    image = container.get("image") or ""
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name, attempt=restart_count),
        image=cri.ImageSpec(image=image, user_specified_image=image),
        command=list(command),
        args=list(args),
        working_dir=container.get("workingDir") or "",
        envs=[cri.KeyValue(key=key, value=value) for key, value in envs],
        mounts=list(mounts),
        labels=container_labels(ref, name, init=init),
        annotations=annotations,
        log_path=log_path(name, restart_count),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=cri.LinuxContainerConfig(resources=linux_resources(container)),
    )


def restart_count(annotations: Mapping[str, str], attempt: int) -> int:
    """A runtime container's restart count: its annotation, else its attempt."""
    try:
        return int(annotations.get(RESTART_COUNT, attempt))
    except ValueError:
        return attempt
