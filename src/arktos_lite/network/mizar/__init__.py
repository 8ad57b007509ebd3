"""Mizar's gRPC service (`mizar.BuiltinsService`) as Arktos's pod controller calls it.

`builtins.proto` is the source; `builtins_pb2.py`, `builtins_pb2.pyi` and
`builtins_pb2_grpc.py` are generated from it and checked in (`nox -s protos`).

`MizarClient` makes the pod calls (`CreatePod`, `UpdatePod`, `DeletePod`) from a trio task,
each in a worker thread with a deadline; `pod_message` builds the message from a pod as
Arktos does; `target_of` reads the address from the data of the ConfigMap
`default/mizar-grpc-service` of the system tenant. A call that Mizar or the transport says
may succeed later raises `TemporaryError`, any other failure `PermanentError`.
"""

from arktos_lite.network.mizar._client import (
    CONFIGMAP as CONFIGMAP,
    CONFIGMAP_HOST_KEY as CONFIGMAP_HOST_KEY,
    DEFAULT_PORT as DEFAULT_PORT,
    MizarClient as MizarClient,
    MizarError as MizarError,
    PermanentError as PermanentError,
    TemporaryError as TemporaryError,
    pod_message as pod_message,
    target_of as target_of,
)

__all__ = [
    "CONFIGMAP",
    "CONFIGMAP_HOST_KEY",
    "DEFAULT_PORT",
    "MizarClient",
    "MizarError",
    "PermanentError",
    "TemporaryError",
    "pod_message",
    "target_of",
]
