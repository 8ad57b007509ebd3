"""The async client of the API server: the only way a component reaches the cluster.

`Client` speaks the Kubernetes REST API with Arktos's tenants over one HTTP/1.1
keep-alive connection pool, rate limited and retried with backoff; errors come back as
`arktos_lite.api.errors` classes, and `Unreachable` when the server cannot be reached.
`load_kubeconfig` reads the file `arktos up` writes (or any kubectl kubeconfig).
"""

from arktos_lite.client._client import Client as Client
from arktos_lite.client._config import (
    Config as Config,
    KubeconfigError as KubeconfigError,
    default_kubeconfig_path as default_kubeconfig_path,
    load_kubeconfig as load_kubeconfig,
)
from arktos_lite.client._errors import Unreachable as Unreachable
from arktos_lite.client._watch import WatchEvent as WatchEvent

__all__ = [
    "Client",
    "Config",
    "KubeconfigError",
    "Unreachable",
    "WatchEvent",
    "default_kubeconfig_path",
    "load_kubeconfig",
]
