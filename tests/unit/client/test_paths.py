"""Request paths for every scope and tenant, and that the API server reads them back."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import resources
from arktos_lite.apiserver import _paths as server_paths
from arktos_lite.client import _paths as paths

from ._fakes import (
    CLUSTERROLES,
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REGISTRY,
    TENANTS,
)


@pytest.mark.parametrize(
    ("resource", "tenant", "namespace", "name", "subresource", "expected"),
    [
        # Namespaced, with a tenant: Arktos's form.
        (PODS, "t1", "ns", None, None, "/api/v1/tenants/t1/namespaces/ns/pods"),
        (PODS, "t1", "ns", "web", None, "/api/v1/tenants/t1/namespaces/ns/pods/web"),
        (PODS, "t1", "ns", "web", "status", "/api/v1/tenants/t1/namespaces/ns/pods/web/status"),
        (PODS, "t1", None, None, None, "/api/v1/tenants/t1/pods"),
        # Namespaced, without a tenant: Kubernetes' short form.
        (PODS, None, "ns", "web", None, "/api/v1/namespaces/ns/pods/web"),
        (PODS, None, "ns", "web", "binding", "/api/v1/namespaces/ns/pods/web/binding"),
        (PODS, None, None, None, None, "/api/v1/pods"),
        # Every tenant.
        (PODS, "all", None, None, None, "/api/v1/tenants/all/pods"),
        (PODS, "all", "ns", None, None, "/api/v1/tenants/all/namespaces/ns/pods"),
        # A group other than the core one.
        (
            DEPLOYMENTS,
            "t1",
            "ns",
            "d",
            "scale",
            "/apis/apps/v1/tenants/t1/namespaces/ns/deployments/d/scale",
        ),
        (DEPLOYMENTS, None, None, None, None, "/apis/apps/v1/deployments"),
        # Tenant-scoped: a namespace is not part of the path.
        (NAMESPACES, "t1", None, "ns", None, "/api/v1/tenants/t1/namespaces/ns"),
        (
            NAMESPACES,
            "t1",
            "ignored",
            "ns",
            "finalize",
            "/api/v1/tenants/t1/namespaces/ns/finalize",
        ),
        (NAMESPACES, None, None, "ns", None, "/api/v1/namespaces/ns"),
        (NAMESPACES, "all", None, None, None, "/api/v1/tenants/all/namespaces"),
        (
            CLUSTERROLES,
            "t1",
            None,
            "admin",
            None,
            "/apis/rbac.authorization.k8s.io/v1/tenants/t1/clusterroles/admin",
        ),
        # Cluster-scoped: neither tenant nor namespace.
        (NODES, "t1", "ns", "n1", "status", "/api/v1/nodes/n1/status"),
        (NODES, None, None, None, None, "/api/v1/nodes"),
        # The tenant object is itself at /api/v1/tenants/{name}.
        (TENANTS, None, None, "t1", None, "/api/v1/tenants/t1"),
        (TENANTS, "other", None, "t1", "finalize", "/api/v1/tenants/t1/finalize"),
        (TENANTS, None, None, None, None, "/api/v1/tenants"),
        # An empty tenant or namespace is no tenant or namespace.
        (CONFIGMAPS, "", "", None, None, "/api/v1/configmaps"),
    ],
)
def test_paths(
    resource: resources.Resource,
    tenant: str | None,
    namespace: str | None,
    name: str | None,
    subresource: str | None,
    expected: str,
) -> None:
    path = paths.resource_path(
        resource, tenant=tenant, namespace=namespace, name=name, subresource=subresource
    )
    assert path == expected


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": "web"}, "needs a namespace"),
        ({"namespace": "ns", "subresource": "status"}, "needs the name"),
        ({"tenant": "all", "namespace": "ns", "name": "web"}, "every tenant"),
        ({"namespace": "ns", "name": ".."}, "cannot be part of a URL path"),
        ({"namespace": ".", "name": "web"}, "cannot be part of a URL path"),
        ({"tenant": "a/b"}, "cannot be part of a URL path"),
        ({"namespace": "ns", "name": "a/../../nodes"}, "cannot be part of a URL path"),
    ],
)
def test_paths_that_cannot_be(kwargs: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        paths.resource_path(PODS, **kwargs)


def test_segments_are_quoted() -> None:
    path = paths.resource_path(CONFIGMAPS, tenant="t 1", namespace="n?s", name="a#b%c")
    assert path == "/api/v1/tenants/t%201/namespaces/n%3Fs/configmaps/a%23b%25c"


# Anything but "/" (which the server's ASGI layer decodes into a separator) must survive
# quoting, including characters that mean something in a URL.
_segments = st.text(
    alphabet=st.characters(exclude_characters="/", exclude_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
_names = st.one_of(st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,10}[a-z0-9])?", fullmatch=True), _segments)


@given(
    resource=st.sampled_from(list(REGISTRY)),
    tenant=st.one_of(st.none(), _names),
    namespace=st.one_of(st.none(), _names),
    name=st.one_of(st.none(), _names),
    data=st.data(),
)
def test_the_server_reads_back_what_the_client_addressed(
    resource: resources.Resource,
    tenant: str | None,
    namespace: str | None,
    name: str | None,
    data: st.DataObject,
) -> None:
    if tenant == resources.ALL_TENANTS and name is not None:
        tenant = None
    if resource.namespaced and name is not None and namespace is None:
        namespace = "default"
    subresource = None
    if name is not None and resource.subresources:
        subresource = data.draw(
            st.one_of(st.none(), st.sampled_from(sorted(resource.subresources)))
        )
    path = paths.resource_path(
        resource, tenant=tenant, namespace=namespace, name=name, subresource=subresource
    )
    assert path.startswith(paths.api_prefix(resource) + "/")
    # What the ASGI server hands the app: the decoded path after the group/version.
    rest = urllib.parse.unquote(path[len(paths.api_prefix(resource)) + 1 :])
    target = server_paths.parse(
        lambda _tenant: REGISTRY, group=resource.group, version=resource.version, rest=rest
    )
    scoped = resource.scope is not resources.Scope.CLUSTER
    assert target.resource == resource
    assert target.tenant == (tenant if scoped else None)
    assert target.namespace == (namespace if resource.namespaced else None)
    assert target.name == name
    assert target.subresource == subresource
    assert not target.watch
