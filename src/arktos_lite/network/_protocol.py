"""What the node agent needs from pod networking.

A `PodNetwork` gives pods network namespaces with addresses (`attach`), VM pods addresses
for their guests' NICs (`attach_guest`), takes them back (`detach`), and keeps Services'
ClusterIPs reachable (`set_services`). Its methods block (they run commands); the agent
calls them from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from arktos_lite.network import _model as model


class PodNetwork(Protocol):
    @property
    def description(self) -> str:
        """One line for the Node: what pods get."""
        ...

    @property
    def pod_cidr(self) -> str: ...

    def start(self) -> None: ...

    def set_pod_cidr(self, cidr: str) -> None: ...

    def attach(self, member: model.Member) -> model.Attachment: ...

    def attach_guest(self, member: model.Member) -> model.Attachment:
        """A VM pod's address, MAC address and bridge: no namespace, the VM runtime plugs
        the guest's NIC into the bridge."""
        ...

    def detach(self, uid: str) -> None: ...

    def attachments(self) -> Mapping[str, model.Attachment]: ...

    def set_services(self, services: Iterable[model.ServicePort]) -> None: ...

    def close(self, *, keep: bool = False) -> None: ...
