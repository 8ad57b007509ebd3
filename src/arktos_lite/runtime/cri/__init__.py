"""The CRI wire format: Kubernetes' runtime.v1 messages and services, plus Arktos' VM calls.

`api.proto` is the source; `api_pb2.py`, `api_pb2.pyi` and `api_pb2_grpc.py` are generated
from it and checked in, so installing arktos-lite needs no protobuf compiler. Regenerate
them after editing the proto with::

    nox -s protos

which runs (from the repository root)::

    python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src \
        --grpc_python_out=src src/arktos_lite/runtime/cri/api.proto

Import the messages as ``from arktos_lite.runtime.cri import api_pb2 as cri``. The package
is ``runtime.v1``, so the services are ``runtime.v1.RuntimeService`` and
``runtime.v1.ImageService``: a client built on these stubs talks to containerd, CRI-O or
any other CRI runtime, and a server built on them is reachable by crictl.
"""
