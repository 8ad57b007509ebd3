"""Which custom resources a tenant is served, worked out from CRDs as the server serves them."""

from __future__ import annotations

from typing import Any

from arktos_lite import client
from arktos_lite.api import resources

Obj = dict[str, Any]

FORCED = {"arktos.futurewei.com/crd-sharing-policy": "forced"}


def crd(
    plural: str,
    *,
    tenant: str = "system",
    group: str = "stable.example.com",
    kind: str | None = None,
    scope: str = "Namespaced",
    versions: tuple[tuple[str, bool, bool], ...] = (("v1", True, True),),
    labels: dict[str, str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    accepted: str | None = None,
) -> Obj:
    obj: Obj = {
        "metadata": {
            "name": f"{plural}.{group}",
            "tenant": tenant,
            "labels": labels or {},
            "creationTimestamp": created,
        },
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "plural": plural,
                "kind": kind or plural.capitalize().rstrip("s"),
                "shortNames": [plural[:2]],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": name,
                    "served": served,
                    "storage": storage,
                    "subresources": {"status": {}, "scale": {}},
                }
                for name, served, storage in versions
            ],
        },
    }
    if accepted is not None:
        obj["status"] = {"conditions": [{"type": "NamesAccepted", "status": accepted}]}
    return obj


def test_a_crd_serves_its_storage_version_with_its_names_and_scope() -> None:
    namespaced, tenant_wide = client.custom_resources(
        [
            crd("crontabs", versions=(("v1beta1", True, False), ("v1", True, True))),
            crd("widgets", scope="Cluster", created="2026-01-02T00:00:00Z"),
        ],
        tenant="system",
    )
    assert namespaced == resources.Resource(
        "stable.example.com",
        "v1",
        "Crontab",
        "crontabs",
        resources.Scope.NAMESPACE,
        short_names=("cr",),
        categories=("all",),
        subresources=frozenset({"status", "scale"}),
    )
    # Arktos: "cluster"-scoped custom objects still belong to a tenant.
    assert tenant_wide.scope is resources.Scope.TENANT
    assert tenant_wide.plural == "widgets"


def test_a_storage_version_not_served_gives_way_to_the_first_served_one() -> None:
    (found,) = client.custom_resources(
        [crd("crontabs", versions=(("v1", False, True), ("v2", True, False)))], tenant="system"
    )
    assert found.version == "v2"
    assert (
        client.custom_resources([crd("crontabs", versions=(("v1", False, True),))], tenant="system")
        == []
    )


def test_a_tenant_has_its_own_crds_and_the_shared_ones_only() -> None:
    crds = [
        crd("crontabs", tenant="t1"),
        crd("gadgets", tenant="t2"),
        crd("widgets", labels=FORCED),
        crd("private"),
    ]
    assert [r.plural for r in client.custom_resources(crds, tenant="t1")] == [
        "widgets",
        "crontabs",
    ]
    assert [r.plural for r in client.custom_resources(crds, tenant="t2")] == [
        "widgets",
        "gadgets",
    ]
    assert [r.plural for r in client.custom_resources(crds, tenant="t3")] == ["widgets"]
    assert [r.plural for r in client.custom_resources(crds, tenant="system")] == [
        "widgets",
        "private",
    ]
    # Only the system tenant shares.
    assert [
        r.plural
        for r in client.custom_resources([crd("gadgets", tenant="t2", labels=FORCED)], tenant="t1")
    ] == []


def test_refused_and_clashing_names_are_not_served() -> None:
    shared = crd("crontabs", labels=FORCED, created="2026-01-02T00:00:00Z")
    # Older, but a tenant's CRD never shadows a shared one.
    shadow = crd("crontabs", tenant="t1", kind="Other")
    same_kind = crd("crons", tenant="t1", kind="Crontab", created="2026-01-03T00:00:00Z")
    refused = crd("gadgets", tenant="t1", accepted="False")
    fresh = crd("widgets", tenant="t1", created="2026-01-04T00:00:00Z")
    found = client.custom_resources([fresh, refused, same_kind, shadow, shared], tenant="t1")
    assert [(r.plural, r.kind) for r in found] == [("crontabs", "Crontab"), ("widgets", "Widget")]
