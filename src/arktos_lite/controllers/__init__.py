"""The core controllers that keep the cluster in order: tenant, namespace, garbage
collector, node lifecycle, actions, endpoints (and endpoint slices), node IPAM, tenant
networks (and Mizar) and, when configured, the Neutron network controller, run together by
`ControllerManager`.

They reach the cluster only through `arktos_lite.client` and `arktos_lite.machinery`,
exactly as a separate `arktos controller-manager` process does.
"""

from arktos_lite.controllers._manager import (
    ControllerManager as ControllerManager,
    ControllerManagerOptions as ControllerManagerOptions,
)
from arktos_lite.controllers._neutron import (
    Auth as NeutronAuth,
    NeutronConfig as NeutronConfig,
)

__all__ = ["ControllerManager", "ControllerManagerOptions", "NeutronAuth", "NeutronConfig"]
