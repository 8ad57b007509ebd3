"""arktos-lite: a Kubernetes-compatible cluster in Python with Arktos's multi-tenancy."""

__version__ = "0.1.0.dev0"
