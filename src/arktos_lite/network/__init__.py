"""Pod networking: network namespaces, CNI attachment, isolation and ClusterIPs.

`PodNetwork` is what the agent uses; `BridgeNetwork` implements it with the CNI bridge and
host-local plugins and nftables (`detect_tools` says whether this machine allows it).
Names, slices, CNI configs and rules are pure functions (`bridge_name`, `bridge_config`,
`ruleset`) so they can be checked without root.
"""

from __future__ import annotations

from arktos_lite.network._bridge import (
    NETNS_DIR as NETNS_DIR,
    BridgeNetwork as BridgeNetwork,
    NetworkError as NetworkError,
    Tools as Tools,
    detect_tools as detect_tools,
)
from arktos_lite.network._cni import (
    CNI_VERSION as CNI_VERSION,
    CNIError as CNIError,
    bridge_config as bridge_config,
    find_plugins as find_plugins,
    invoke as invoke,
    ipam_config as ipam_config,
    result_ips as result_ips,
)
from arktos_lite.network._model import (
    BRIDGE_PREFIX as BRIDGE_PREFIX,
    DEFAULT_NETWORK as DEFAULT_NETWORK,
    NETWORK_LABEL as NETWORK_LABEL,
    Attachment as Attachment,
    Bridge as Bridge,
    Endpoint as Endpoint,
    Member as Member,
    NetworkKey as NetworkKey,
    ServicePort as ServicePort,
    bridge_name as bridge_name,
    guest_mac as guest_mac,
    netns_name as netns_name,
    network_of as network_of,
    slice_prefix as slice_prefix,
    subnet_slices as subnet_slices,
)
from arktos_lite.network._nft import (
    apply_script as apply_script,
    ruleset as ruleset,
    table_name as table_name,
)
from arktos_lite.network._protocol import PodNetwork as PodNetwork
from arktos_lite.network._services import service_ports as service_ports
