"""Container and VM runtimes as the node agent sees them: the CRI seam.

`Runtime` is what the agent needs from a runtime, as trio methods whose values are the CRI
protobuf messages of `arktos_lite.runtime.cri` (Kubernetes' runtime.v1, plus Arktos' VM
calls; `VmRuntime` adds those, with the `VM_*` annotation keys VM runtimes report;
`vm_resources` is what a VM gets of `spec.virtualMachine.resources`).
`RuntimeClient` implements it over gRPC for any CRI socket (the embedded process
runtime, containerd, a VM runtime). Failures are `CRIError` subclasses (`NotFound`,
`Unavailable`, ...), also reachable as `runtime.errors.NotFound`, never gRPC's own errors.
`parse_endpoints` reads the `--runtime-endpoint 'name,workloadType,endpoint;…'` list into
`Endpoint`s. `fake.FakeRuntime` answers the same calls in memory (hollow nodes, tests), and
`stream` holds the channel.k8s.io websocket protocol that exec streams speak.
"""

from arktos_lite.runtime import (
    _errors as errors,
    _fake as fake,
    _stream as stream,
    cri as cri,
)
from arktos_lite.runtime._client import RuntimeClient as RuntimeClient
from arktos_lite.runtime._endpoints import (
    WORKLOAD_TYPES as WORKLOAD_TYPES,
    Endpoint as Endpoint,
    format_endpoints as format_endpoints,
    parse_endpoints as parse_endpoints,
)
from arktos_lite.runtime._errors import (
    AlreadyExists as AlreadyExists,
    CRIError as CRIError,
    DeadlineExceeded as DeadlineExceeded,
    FailedPrecondition as FailedPrecondition,
    Internal as Internal,
    InvalidArgument as InvalidArgument,
    NotFound as NotFound,
    Unavailable as Unavailable,
    Unimplemented as Unimplemented,
)
from arktos_lite.runtime._protocol import (
    POD_IPS as POD_IPS,
    POD_NETNS as POD_NETNS,
    POD_NETWORK_INFO as POD_NETWORK_INFO,
    POD_NIC as POD_NIC,
    POD_NIC_INFO as POD_NIC_INFO,
    VM_ID as VM_ID,
    VM_MEMORY as VM_MEMORY,
    VM_POWER_STATE as VM_POWER_STATE,
    VM_RESTART_COUNT as VM_RESTART_COUNT,
    VM_STATE as VM_STATE,
    VM_VCPUS as VM_VCPUS,
    ExecResult as ExecResult,
    Runtime as Runtime,
    VmRuntime as VmRuntime,
)
from arktos_lite.runtime._vmresources import (
    VmResources as VmResources,
    vm_resources as vm_resources,
)

__all__ = [
    "VM_ID",
    "VM_MEMORY",
    "POD_IPS",
    "POD_NETNS",
    "POD_NETWORK_INFO",
    "POD_NIC",
    "POD_NIC_INFO",
    "VM_POWER_STATE",
    "VM_RESTART_COUNT",
    "VM_STATE",
    "VM_VCPUS",
    "WORKLOAD_TYPES",
    "AlreadyExists",
    "CRIError",
    "DeadlineExceeded",
    "Endpoint",
    "ExecResult",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "Runtime",
    "RuntimeClient",
    "Unavailable",
    "Unimplemented",
    "VmResources",
    "VmRuntime",
    "cri",
    "errors",
    "fake",
    "format_endpoints",
    "parse_endpoints",
    "stream",
    "vm_resources",
]
