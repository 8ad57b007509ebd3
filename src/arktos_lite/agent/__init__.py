"""The node agent: a node's registration, heartbeats and pods, over CRI runtimes.

`Agent` runs one node: it registers the Node (capacity, labels, nodeInfo, conditions
`Ready`, `ContainerRuntimeReady`, `VmRuntimeReady`, …), renews its Lease, runs a worker per
pod bound to it on the runtime of the pod's workload type (`RuntimeSet`), and serves the
pods' logs and exec to the API server. `HollowNodes` simulates many nodes in one process
on in-memory runtimes, for scale tests. `NodeReporter` is the registration and heartbeat
part on its own.
"""

from arktos_lite.agent._agent import Agent as Agent, AgentConfig as AgentConfig
from arktos_lite.agent._hollow import HOLLOW_LABEL as HOLLOW_LABEL, HollowNodes as HollowNodes
from arktos_lite.agent._node import (
    ISOLATION_ANNOTATION as ISOLATION_ANNOTATION,
    NODE_LEASE_NAMESPACE as NODE_LEASE_NAMESPACE,
    NodeReporter as NodeReporter,
)
from arktos_lite.agent._runtimes import (
    NamedRuntime as NamedRuntime,
    RuntimeSet as RuntimeSet,
    WorkloadType as WorkloadType,
    workload_type as workload_type,
)

__all__ = [
    "HOLLOW_LABEL",
    "ISOLATION_ANNOTATION",
    "NODE_LEASE_NAMESPACE",
    "Agent",
    "AgentConfig",
    "HollowNodes",
    "NamedRuntime",
    "NodeReporter",
    "RuntimeSet",
    "WorkloadType",
    "workload_type",
]
