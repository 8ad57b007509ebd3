"""The public face of `arktos_lite.client`: the names and signatures others code against."""

from __future__ import annotations

import dataclasses
import inspect

from arktos_lite import client


def test_the_public_names() -> None:
    assert sorted(client.__all__) == [
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
    for name in client.__all__:
        assert getattr(client, name).__module__.startswith("arktos_lite.client._")


def _parameters(function: object) -> list[str]:
    return [
        f"*{p.name}" if p.kind is p.KEYWORD_ONLY else p.name
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        if p.name != "self"
    ]


def test_values() -> None:
    assert [f.name for f in dataclasses.fields(client.Config)] == [
        "server",
        "token",
        "ca_file",
        "ca_data",
        "cert_file",
        "key_file",
        "insecure",
        "tenant",
        "cert_data",
        "key_data",
        "tls_server_name",
        "unix_socket",
    ]
    assert [f.name for f in dataclasses.fields(client.WatchEvent)] == ["type", "object"]
    for value in (client.Config, client.WatchEvent):
        assert value.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert "__slots__" in vars(value)
    assert issubclass(client.KubeconfigError, ValueError)
    assert issubclass(client.Unreachable, Exception)
    assert _parameters(client.load_kubeconfig) == ["path", "*context"]
    assert _parameters(client.custom_resources) == ["crds", "*tenant"]
    assert _parameters(client.served_custom_resources) == ["api", "*tenant"]


def test_client_signatures() -> None:
    expected = {
        "__init__": [
            "config",
            "*qps",
            "*burst",
            "*retries",
            "*backoff_base",
            "*backoff_max",
            "*timeout",
            "*user_agent",
            "*transport",
        ],
        "from_kubeconfig": ["path", "*context", "*tenant", "kwargs"],
        "with_tenant": ["tenant"],
        "get": ["resource", "name", "*namespace", "*tenant", "*subresource"],
        "list": [
            "resource",
            "*namespace",
            "*tenant",
            "*label_selector",
            "*field_selector",
            "*limit",
            "*continue_",
            "*resource_version",
            "*resource_version_match",
        ],
        "list_all": [
            "resource",
            "*namespace",
            "*tenant",
            "*label_selector",
            "*field_selector",
            "*page_size",
        ],
        "create": ["resource", "obj", "*namespace", "*tenant", "*dry_run", "*field_manager"],
        "replace": [
            "resource",
            "obj",
            "*namespace",
            "*tenant",
            "*subresource",
            "*dry_run",
            "*field_manager",
        ],
        "patch": [
            "resource",
            "name",
            "body",
            "*patch_type",
            "*namespace",
            "*tenant",
            "*subresource",
            "*field_manager",
            "*force",
            "*dry_run",
        ],
        "delete": [
            "resource",
            "name",
            "*namespace",
            "*tenant",
            "*propagation_policy",
            "*grace_period_seconds",
            "*preconditions",
            "*dry_run",
        ],
        "delete_collection": [
            "resource",
            "*namespace",
            "*tenant",
            "*label_selector",
            "*field_selector",
            "*propagation_policy",
        ],
        "post_subresource": ["resource", "name", "subresource", "body", "*namespace", "*tenant"],
        "watch": [
            "resource",
            "*namespace",
            "*tenant",
            "*resource_version",
            "*label_selector",
            "*field_selector",
            "*timeout_seconds",
            "*allow_bookmarks",
        ],
        "version": [],
        "request": ["method", "path", "*params", "*json", "*content", "*headers"],
        "aclose": [],
    }
    for name, parameters in expected.items():
        assert _parameters(getattr(client.Client, name)) == parameters, name
    for name in ("get", "list", "list_all", "create", "replace", "patch", "delete", "version"):
        assert inspect.iscoroutinefunction(getattr(client.Client, name)), name
    assert not inspect.iscoroutinefunction(client.Client.watch)


def test_routed_client() -> None:
    assert issubclass(client.RoutedClient, client.Client)
    assert _parameters(client.RoutedClient.__init__) == ["partitions", "*tenant", "options"]
    assert _parameters(client.Client.partitions_for) == ["resource", "*tenant"]
    assert _parameters(client.Client.clients_for) == ["path", "*method"]
    assert _parameters(client.Client.path_of) == [
        "resource",
        "*tenant",
        "*namespace",
        "*name",
        "*subresource",
    ]
    assert _parameters(client.load_partitioned_kubeconfig) == ["path"]
    assert [f.name for f in dataclasses.fields(client.PartitionClient)] == ["partition", "client"]
    assert [f.name for f in dataclasses.fields(client.PartitionedConfig)] == [
        "current",
        "partitions",
    ]
