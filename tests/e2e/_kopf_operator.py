"""A small kopf operator for the e2e tests, run as `kopf run --standalone -A` in a subprocess.

Each Widget (`kopf.e2e.example.com/v1`) gets a ConfigMap `{name}-config` it owns, holding
its colour, and a `status.message` saying what was done last; changing the colour changes
both; deleting the Widget deletes the ConfigMap first (kopf holds its finalizer until
then). The cluster is the one `KUBECONFIG` names.
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes

GROUP = "kopf.e2e.example.com"
VERSION = "v1"
PLURAL = "widgets"


def _core() -> kubernetes.client.CoreV1Api:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(client_configuration=config)
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Short watches, so that a watch the server ends is noticed and resumed quickly.
    settings.watching.server_timeout = 20
    settings.watching.client_timeout = 30
    settings.watching.reconnect_backoff = 0.5


@kopf.on.create(GROUP, VERSION, PLURAL)
def created(spec: Any, name: str, namespace: str, patch: Any, **_: Any) -> None:
    colour = spec.get("color", "")
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config"},
        "data": {"color": colour},
    }
    kopf.adopt(config_map)
    try:
        _core().create_namespaced_config_map(namespace, config_map)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:  # made by an earlier attempt
            raise
    patch.status["message"] = f"created with color {colour}"


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.color")
def recoloured(new: Any, name: str, namespace: str, patch: Any, **_: Any) -> None:
    _core().patch_namespaced_config_map(f"{name}-config", namespace, {"data": {"color": new}})
    patch.status["message"] = f"color is now {new}"


@kopf.on.delete(GROUP, VERSION, PLURAL)
def deleted(name: str, namespace: str, **_: Any) -> None:
    try:
        _core().delete_namespaced_config_map(f"{name}-config", namespace)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
