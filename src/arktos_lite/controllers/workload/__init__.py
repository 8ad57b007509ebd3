"""Arktos's partitioned, active-active workload controllers: ReplicaSet and Deployment.

Every instance of a controller type registers a `ControllerInstance`, renews it, and
handles only the objects whose `metadata.hashKey` lies in its share of the hash space;
shares are re-split as instances come and go, without an object ever being handled by two
instances at once or by none (`Instance`; the protocol is described in `_instance`).

* `HashRange`, `PartitionedController`, `ControllerOptions`, `ControllerFactory`: the
  seam between the instance framework and a controller (`_partition`).
* `RangeGate`, `RangeInformer`, `RangeInformers`: what a controller uses to keep its
  side of that seam (`_gate`).
* `controller_keys`, `split`: Arktos's even split of the hash space (`_ranges`).
* `ReplicaSetController`: Kubernetes's ReplicaSet controller, partitioned.
* `WorkloadControllerManager`, `load_config`: `arktos workload-controller-manager`.
"""

from arktos_lite.controllers.workload._gate import (
    RangeGate as RangeGate,
    RangeInformer as RangeInformer,
    RangeInformers as RangeInformers,
)
from arktos_lite.controllers.workload._instance import (
    Instance as Instance,
    InstanceTiming as InstanceTiming,
)
from arktos_lite.controllers.workload._manager import (
    CONTROLLERS as CONTROLLERS,
    ConfigError as ConfigError,
    ControllerConfig as ControllerConfig,
    Registration as Registration,
    WorkloadConfig as WorkloadConfig,
    WorkloadControllerManager as WorkloadControllerManager,
    load_config as load_config,
    parse_config as parse_config,
    parse_duration as parse_duration,
)
from arktos_lite.controllers.workload._partition import (
    MAX_HASH_KEY as MAX_HASH_KEY,
    ControllerFactory as ControllerFactory,
    ControllerOptions as ControllerOptions,
    HashRange as HashRange,
    PartitionedController as PartitionedController,
    orphan_selector as orphan_selector,
)
from arktos_lite.controllers.workload._ranges import (
    controller_keys as controller_keys,
    split as split,
)
from arktos_lite.controllers.workload._replicaset import (
    ReplicaSetController as ReplicaSetController,
)

__all__ = [
    "CONTROLLERS",
    "MAX_HASH_KEY",
    "ConfigError",
    "ControllerConfig",
    "ControllerFactory",
    "ControllerOptions",
    "HashRange",
    "Instance",
    "InstanceTiming",
    "PartitionedController",
    "RangeGate",
    "RangeInformer",
    "RangeInformers",
    "Registration",
    "ReplicaSetController",
    "WorkloadConfig",
    "WorkloadControllerManager",
    "controller_keys",
    "load_config",
    "orphan_selector",
    "parse_config",
    "parse_duration",
    "split",
]
