"""arktos-lite: a Kubernetes-compatible cluster in Python with Arktos's multi-tenancy."""

import os

# gRPC reads this once, when it is first imported. Its fork handlers make the children
# libvirt forks to probe and run QEMU abort; this process never forks to use gRPC.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

__version__ = "0.1.0.dev0"
