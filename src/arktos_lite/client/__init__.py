"""The async client of the API server: the only way a component reaches the cluster.

`Client` speaks the Kubernetes REST API with Arktos's tenants over one HTTP/1.1
keep-alive connection pool, rate limited and retried with backoff; errors come back as
`arktos_lite.api.errors` classes, and `Unreachable` when the server cannot be reached.
`load_kubeconfig` reads the file `arktos up` writes (or any kubectl kubeconfig).

`RoutedClient` is a `Client` over the API servers of a partitioned cluster, one
single-server client per partition, each request routed to the partition holding its
tenant; `Client.from_kubeconfig` makes one from a kubeconfig whose contexts address
partitions (`load_partitioned_kubeconfig`).

`served_custom_resources` says which custom resources a tenant is served (from the
CustomResourceDefinitions the server holds), `custom_resources` the same from CRDs at hand.
"""

from arktos_lite.client import _lean  # noqa: F401  (before anything imports httpx)
from arktos_lite.client._client import Client as Client, PartitionClient as PartitionClient
from arktos_lite.client._config import (
    Config as Config,
    KubeconfigError as KubeconfigError,
    PartitionedConfig as PartitionedConfig,
    default_kubeconfig_path as default_kubeconfig_path,
    load_kubeconfig as load_kubeconfig,
    load_partitioned_kubeconfig as load_partitioned_kubeconfig,
)
from arktos_lite.client._discovery import (
    custom_resources as custom_resources,
    served_custom_resources as served_custom_resources,
)
from arktos_lite.client._errors import Unreachable as Unreachable
from arktos_lite.client._routed import RoutedClient as RoutedClient
from arktos_lite.client._watch import WatchEvent as WatchEvent

__all__ = [
    "Client",
    "Config",
    "KubeconfigError",
    "PartitionClient",
    "PartitionedConfig",
    "RoutedClient",
    "Unreachable",
    "WatchEvent",
    "custom_resources",
    "default_kubeconfig_path",
    "load_kubeconfig",
    "load_partitioned_kubeconfig",
    "served_custom_resources",
]
