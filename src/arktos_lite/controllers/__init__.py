"""The core controllers that keep the cluster in order: tenant, namespace, garbage
collector, node lifecycle and actions, run together by `ControllerManager`.

They reach the cluster only through `arktos_lite.client` and `arktos_lite.machinery`,
exactly as a separate `arktos controller-manager` process does.
"""

from arktos_lite.controllers._manager import (
    ControllerManager as ControllerManager,
    ControllerManagerOptions as ControllerManagerOptions,
)

__all__ = ["ControllerManager", "ControllerManagerOptions"]
