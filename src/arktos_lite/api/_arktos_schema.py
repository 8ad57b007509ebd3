"""Schemas of what Arktos adds to Kubernetes: its own kinds and the VM and NIC types of pods.

Written in the shape of the upstream definitions in `_schema` (JSON schema, nullable
`type` lists, `$ref: "#/$defs/<name>"`) and named as Arktos's Go types would be in the
OpenAPI document (`io.k8s.api.core.v1.Tenant`), so that `_schema.definitions()` serves
strategic merge patch, field validation and the OpenAPI documents alike. The fields are
those of ARKTOS-API.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

_CORE: Final = "io.k8s.api.core.v1."
# Arktos's own API group (k8s.io/arktos-ext/pkg/apis/arktosextensions/v1).
_EXT: Final = "io.k8s.arktos-ext.pkg.apis.arktosextensions.v1."
_EXT_GROUP: Final = "arktos.futurewei.com"
_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."


def _ref(name: str, description: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}", "description": description}


def _scalar(kind: str, description: str, *, format: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": description, "type": [kind, "null"]}
    if format is not None:
        schema["format"] = format
    return schema


def _string(description: str) -> dict[str, Any]:
    return _scalar("string", description)


def _object(
    description: str, properties: Mapping[str, Any], *, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "description": description,
        "properties": dict(properties),
        "type": ["object", "null"],
    }
    if required:
        schema["required"] = list(required)
    return schema


def _kind(
    kind: str,
    description: str,
    fields: Mapping[str, Any],
    *,
    required: tuple[str, ...] = (),
    group: str = "",
) -> dict[str, Any]:
    """A top-level kind (of the core group by default): type meta, object meta and `fields`."""
    schema = _object(
        description,
        {
            "apiVersion": _string("APIVersion defines the versioned schema of this object."),
            "kind": _string("Kind is a string value representing the REST resource."),
            "metadata": _ref(_META + "ObjectMeta", "Standard object's metadata."),
            **fields,
        },
        required=required,
    )
    schema["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": "v1"}]
    return schema


def _list_of(kind: str, *, prefix: str = _CORE, group: str = "") -> dict[str, Any]:
    schema = _object(
        f"{kind}List is a list of {kind} objects.",
        {
            "apiVersion": _string("APIVersion defines the versioned schema of this object."),
            "items": {
                "description": f"Items is the list of {kind} objects.",
                "items": {"$ref": f"#/$defs/{prefix}{kind}"},
                "type": ["array", "null"],
            },
            "kind": _string("Kind is a string value representing the REST resource."),
            "metadata": _ref(_META + "ListMeta", "Standard list metadata."),
        },
        required=("items",),
    )
    schema["x-kubernetes-group-version-kind"] = [
        {"group": group, "kind": f"{kind}List", "version": "v1"}
    ]
    return schema


_DELAY: Final = _scalar(
    "integer", "Seconds to wait before the action is carried out.", format="int32"
)

DEFINITIONS: Final[Mapping[str, Mapping[str, Any]]] = {
    # Data partitions (served by every API server about its own, never stored)
    _CORE + "DataPartitionConfig": _kind(
        "DataPartitionConfig",
        "Arktos: the tenants one API server partition holds, [rangeStart, rangeEnd); a "
        "bound marked not valid is unbounded.",
        {
            "serviceGroupId": _string("The service group of the partition's servers."),
            "rangeStart": _string("The first tenant name of the partition."),
            "isRangeStartValid": _scalar("boolean", "Whether rangeStart bounds the range."),
            "rangeEnd": _string("The tenant name where the partition ends (exclusive)."),
            "isRangeEndValid": _scalar("boolean", "Whether rangeEnd bounds the range."),
        },
    ),
    _CORE + "DataPartitionConfigList": _list_of("DataPartitionConfig"),
    # Tenants
    _CORE + "Tenant": _kind(
        "Tenant",
        "Arktos: a tenant, the unit of isolation that owns namespaces and everything in them.",
        {
            "spec": _ref(_CORE + "TenantSpec", "The tenant's desired state."),
            "status": _ref(_CORE + "TenantStatus", "The tenant's observed state."),
        },
    ),
    _CORE + "TenantSpec": _object(
        "TenantSpec describes the attributes of a tenant.",
        {
            "finalizers": {
                "description": "Finalizers that must be empty before the tenant is removed.",
                "items": {"type": ["string", "null"]},
                "type": ["array", "null"],
                "x-kubernetes-list-type": "atomic",
            },
            "storageClusterId": _string(
                'The storage cluster holding the tenant\'s data, "0" to "63".'
            ),
        },
    ),
    _CORE + "TenantStatus": _object(
        "TenantStatus is the observed state of a tenant.",
        {"phase": _string("The tenant's lifecycle phase: Active or Terminating.")},
    ),
    _CORE + "TenantList": _list_of("Tenant"),
    # Controller instances
    _CORE + "ControllerInstance": _kind(
        "ControllerInstance",
        "Arktos: one running instance of a workload controller and the hash key range it owns.",
        {
            "controllerType": _string("The controller's type, such as ReplicaSet."),
            "controllerKey": _scalar(
                "integer", "The inclusive upper bound of the instance's range.", format="int64"
            ),
            "workloadNum": _scalar(
                "integer", "How many workloads the instance manages.", format="int32"
            ),
            "isLocked": _scalar("boolean", "Whether the instance is locked."),
        },
        required=("controllerType",),
    ),
    _CORE + "ControllerInstanceList": _list_of("ControllerInstance"),
    # Tenant networks (arktos.futurewei.com/v1)
    _EXT + "Network": _kind(
        "Network",
        "Arktos: a network of a tenant (flat, vpc or mizar); a pod joins the one its "
        "label arktos.futurewei.com/network names, `default` if it has none.",
        {
            "spec": _ref(_EXT + "NetworkSpec", "The network's desired state."),
            "status": _ref(_EXT + "NetworkStatus", "The network's observed state."),
        },
        group=_EXT_GROUP,
    ),
    _EXT + "NetworkSpec": _object(
        "NetworkSpec describes a network.",
        {
            "type": _string("The network's type: flat, vpc or mizar. Cannot be changed."),
            "vpcID": _string("The VPC of the network provider; required for type vpc."),
            "service": _ref(_EXT + "NetworkService", "How services of the network get VIPs."),
        },
        required=("type",),
    ),
    _EXT + "NetworkService": _object(
        "NetworkService says how services of a network get their virtual IPs.",
        {
            "ipam": _string("Who assigns service VIPs: Kubernetes or External."),
            "cidrs": {
                "description": "The ranges service VIPs come from.",
                "items": {"type": ["string", "null"]},
                "type": ["array", "null"],
                "x-kubernetes-list-type": "atomic",
            },
        },
    ),
    _EXT + "NetworkStatus": _object(
        "NetworkStatus is the observed state of a network.",
        {
            "phase": _string("Pending, Ready, Failed, Terminating or Unknown."),
            "message": _string("Why the network is in its phase."),
            "dnsServiceIP": _string("The address of the network's DNS service."),
        },
    ),
    _EXT + "NetworkList": _list_of("Network", prefix=_EXT, group=_EXT_GROUP),
    # Actions on VM pods
    _CORE + "Action": _kind(
        "Action",
        "Arktos: an operation (reboot, snapshot, restore) on the virtual machine of a pod.",
        {
            "spec": _ref(_CORE + "ActionSpec", "The action to carry out."),
            "status": _ref(_CORE + "ActionStatus", "The outcome of the action."),
        },
    ),
    _CORE + "ActionSpec": _object(
        "ActionSpec names the pod, its node and exactly one action.",
        {
            "nodeName": _string("The node the pod runs on."),
            "podName": _string("The pod whose virtual machine the action is for."),
            "podID": _string("The uid of the pod."),
            "rebootAction": _ref(_CORE + "RebootAction", "Reboot the virtual machine."),
            "snapshotAction": _ref(_CORE + "SnapshotAction", "Snapshot the virtual machine."),
            "restoreAction": _ref(
                _CORE + "RestoreAction", "Restore the virtual machine to a snapshot."
            ),
        },
    ),
    _CORE + "ActionList": _list_of("Action"),
    # The body of `POST …/pods/{name}/action`, from which the API server makes an Action.
    _CORE + "CustomAction": _kind(
        "CustomAction",
        "Arktos: an action on a VM pod, posted to the pod's action subresource.",
        {
            "operation": _string("The action: reboot, snapshot or restore."),
            "rebootParams": _ref(_CORE + "RebootParams", "The reboot's parameters."),
            "snapshotParams": _ref(_CORE + "SnapshotParams", "The snapshot's parameters."),
            "restoreParams": _ref(_CORE + "RestoreParams", "The restore's parameters."),
        },
        required=("operation",),
    ),
    _CORE + "RebootParams": _object(
        "RebootParams are the parameters of a reboot.", {"delayInSeconds": _DELAY}
    ),
    _CORE + "SnapshotParams": _object(
        "SnapshotParams are the parameters of a snapshot.",
        {"snapshotName": _string("The name of the snapshot to take.")},
        required=("snapshotName",),
    ),
    _CORE + "RestoreParams": _object(
        "RestoreParams are the parameters of a restore.",
        {"snapshotID": _string("The snapshot to restore.")},
        required=("snapshotID",),
    ),
    _CORE + "RebootAction": _object(
        "RebootAction reboots a virtual machine.", {"delayInSeconds": _DELAY}
    ),
    _CORE + "SnapshotAction": _object(
        "SnapshotAction takes a snapshot of a virtual machine.",
        {"snapshotName": _string("The name of the snapshot."), "delayInSeconds": _DELAY},
    ),
    _CORE + "RestoreAction": _object(
        "RestoreAction restores a virtual machine to a snapshot.",
        {"snapshotID": _string("The snapshot to restore."), "delayInSeconds": _DELAY},
    ),
    _CORE + "ActionStatus": _object(
        "ActionStatus is the outcome of an action.",
        {
            "complete": _scalar("boolean", "Whether the action has been carried out."),
            "completionTime": _scalar(
                "string",
                "When the action completed (or failed); retention is counted from it.",
                format="date-time",
            ),
            "error": _string("Why the action failed, if it did."),
            "podName": _string("The pod the action was for."),
            "podID": _string("The uid of that pod."),
            "rebootStatus": _ref(_CORE + "RebootStatus", "The outcome of a reboot."),
            "snapshotStatus": _ref(_CORE + "SnapshotStatus", "The outcome of a snapshot."),
            "restoreStatus": _ref(_CORE + "RestoreStatus", "The outcome of a restore."),
        },
    ),
    _CORE + "RebootStatus": _object(
        "RebootStatus is the outcome of a reboot.",
        {"rebootSuccessful": _scalar("boolean", "Whether the reboot succeeded.")},
    ),
    _CORE + "SnapshotStatus": _object(
        "SnapshotStatus is the outcome of a snapshot.",
        {"snapshotID": _string("The id of the snapshot taken.")},
    ),
    _CORE + "RestoreStatus": _object(
        "RestoreStatus is the outcome of a restore.",
        {"restoreSuccessful": _scalar("boolean", "Whether the restore succeeded.")},
    ),
    # Unified pods: a pod's virtual machine, its status and its network interfaces
    _CORE + "VirtualMachine": _object(
        "Arktos: the virtual machine a pod runs instead of containers.",
        {
            "name": _string("The virtual machine's name, a DNS label."),
            "image": _string("The image the virtual machine boots."),
            "imagePullPolicy": _string("Always, Never or IfNotPresent (the default)."),
            "resources": _ref(
                _CORE + "ResourceRequirements", "The virtual machine's CPU and memory."
            ),
            "keyPairName": _string("The key pair to log in with (or publicKey)."),
            "publicKey": _string("The public key to log in with (or keyPairName)."),
            "userData": _scalar(
                "string", "Cloud-init user data, base64, at most 65535 bytes.", format="byte"
            ),
            "cloudInitUserDataScript": _string("A cloud-init user data script."),
            "powerSpec": _string("Running (the default), Paused, Shutdown or Suspended."),
            "shutdownBehavior": _string("What a shutdown from inside the guest does."),
            "bootVolume": _string("The volume the virtual machine boots from."),
            "volumeMounts": {
                "description": "Volumes of the pod mounted into the virtual machine.",
                "items": {"$ref": f"#/$defs/{_CORE}VolumeMount"},
                "type": ["array", "null"],
                "x-kubernetes-list-map-keys": ["mountPath"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "mountPath",
                "x-kubernetes-patch-strategy": "merge",
            },
        },
        required=("name", "image"),
    ),
    _CORE + "VirtualMachineStatus": _object(
        "Arktos: the observed state of a pod's virtual machine.",
        {
            "name": _string("The virtual machine's name."),
            "virtualMachineId": _string("The runtime's id of the virtual machine."),
            "imageId": _string("The runtime's id of the image."),
            "image": _string("The image the virtual machine runs."),
            "state": _string("active, paused, suspended, stopped, error, deleted, ..."),
            "powerState": _string("nostate, running, paused, shutdown, crashed or suspended."),
            "ready": _scalar("boolean", "Whether the virtual machine is ready."),
            "restartCount": _scalar(
                "integer", "How often the virtual machine was rebooted.", format="int32"
            ),
            "lastTerminationState": {
                "description": "How the virtual machine last ended.",
                "type": ["object", "null"],
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "resources": _ref(
                _CORE + "ResourceRequirements", "The virtual machine's CPU and memory."
            ),
        },
    ),
    _CORE + "Nic": _object(
        "Arktos: a network interface of a pod.",
        {
            "name": _string("The interface's name, unique in the pod."),
            "subnetName": _string("The subnet to attach to."),
            "portId": _string("The network port, created by the network controller if empty."),
            "ipAddress": _string("A fixed IP address."),
            "tag": _string("A tag for the interface."),
            "ipv6Enabled": _scalar("boolean", "Whether the interface gets an IPv6 address."),
        },
        required=("name",),
    ),
    _CORE + "NicStatus": _object(
        "Arktos: the observed state of a pod's network interface.",
        {
            "name": _string("The interface's name, as in spec.nics."),
            "portId": _string("The network port of the interface."),
            "macAddress": _string("The port's MAC address."),
            "ipAddress": _string("The port's IP address."),
            "state": _string("Pending, Ready or Failed."),
            "reason": _string("Why the interface is in its state."),
        },
        required=("name",),
    ),
}
"""New definitions by name; `_schema` layers them, and the fields below, over upstream."""

POD_OVERLAY: Final[Mapping[str, Mapping[str, Any]]] = {
    _CORE + "PodSpec": {
        # A VM pod has a virtualMachine instead of containers.
        "required": [],
        "properties": {
            "virtualMachine": _ref(_CORE + "VirtualMachine", "Arktos: the pod's virtual machine."),
            "nics": {
                "description": "Arktos: the pod's network interfaces.",
                "type": ["array", "null"],
                "items": {"$ref": f"#/$defs/{_CORE}Nic"},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
            },
            "vpc": _string("Arktos: the VPC the pod's network belongs to."),
        },
    },
    _CORE + "PodStatus": {
        "properties": {
            "virtualMachineStatus": _ref(
                _CORE + "VirtualMachineStatus", "Arktos: the state of the pod's virtual machine."
            ),
            "nicStatuses": {
                "description": "Arktos: the state of the pod's network interfaces.",
                "type": ["array", "null"],
                "items": {"$ref": f"#/$defs/{_CORE}NicStatus"},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
            },
        },
    },
}
"""Arktos's fields of pods, deep-merged over the upstream PodSpec and PodStatus."""
