"""Discovery of custom resources: groups, preferred versions, resource lists."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.api import _customresources as customresources, _resources as resources
from arktos_lite.apiserver import _discovery as discovery

Obj = dict[str, Any]


def crd(
    group: str = "stable.example.com",
    *,
    versions: tuple[str, ...] = ("v1",),
    kind: str = "CronTab",
    plural: str = "crontabs",
    scope: str = "Namespaced",
    subresources: Obj | None = None,
    names: Obj | None = None,
) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "kind": kind, **(names or {})},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": index == 0,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                    "subresources": subresources or {},
                }
                for index, version in enumerate(versions)
            ],
        },
    }


def registry(*definitions: Obj) -> resources.Registry:
    custom = [r for d in definitions for r in customresources.resources_of(d, tenant="acme")]
    return resources.Registry((*resources.RESOURCES, *custom))


def test_version_priority_order() -> None:
    ordered = [
        "v10",
        "v2",
        "v1",
        "v11beta2",
        "v10beta3",
        "v3beta1",
        "v12alpha1",
        "v11alpha2",
        "foo1",
        "foo10",
    ]
    shuffled = ordered[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=discovery.version_priority) == ordered


@given(st.lists(st.from_regex(r"v[1-9][0-9]?((alpha|beta)[1-9])?", fullmatch=True), min_size=1))
def test_ga_versions_always_come_first(versions: list[str]) -> None:
    ordered = sorted(versions, key=discovery.version_priority)
    stabilities = [2 if v[1:].isdigit() else 1 if "beta" in v else 0 for v in ordered]
    assert stabilities == sorted(stabilities, reverse=True)


def test_the_preferred_version_is_the_highest_priority_served_one() -> None:
    found = registry(crd(versions=("v1alpha1", "v1beta1", "v1", "v2beta1")))
    group = discovery.api_group(found, "stable.example.com")
    assert group is not None
    assert [v["version"] for v in group["versions"]] == ["v1", "v2beta1", "v1beta1", "v1alpha1"]
    assert group["preferredVersion"] == {"groupVersion": "stable.example.com/v1", "version": "v1"}


def test_custom_groups_follow_the_built_in_ones_by_name() -> None:
    found = registry(crd("zeta.example.com"), crd("alpha.example.com", versions=("v1beta1",)))
    names = [g["name"] for g in discovery.api_group_list(found)["groups"]]
    built_in = [g["name"] for g in discovery.api_group_list(resources.Registry())["groups"]]
    assert names == [*built_in, "alpha.example.com", "zeta.example.com"]
    listed = discovery.api_group_list(found)["groups"][-2]
    assert listed["preferredVersion"]["version"] == "v1beta1"


def test_built_in_groups_keep_their_order_and_versions() -> None:
    assert (
        discovery.api_group_list(registry(crd()))["groups"][:-1]
        == discovery.api_group_list(resources.Registry())["groups"]
    )


def test_a_custom_resource_in_its_resource_list() -> None:
    found = registry(
        crd(
            subresources={
                "status": {},
                "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                },
            },
            names={"shortNames": ["ct"], "categories": ["all", "cron"]},
        )
    )
    listed = discovery.resource_list(found, "stable.example.com", "v1", system_user=False)
    assert listed is not None
    assert listed["groupVersion"] == "stable.example.com/v1"
    assert listed["resources"] == [
        {
            "name": "crontabs",
            "singularName": "crontab",
            "namespaced": True,
            "kind": "CronTab",
            "verbs": list(resources.ALL_VERBS),
            "shortNames": ["ct"],
            "categories": ["all", "cron"],
        },
        {
            "name": "crontabs/scale",
            "singularName": "",
            "namespaced": True,
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
            "group": "autoscaling",
            "version": "v1",
        },
        {
            "name": "crontabs/status",
            "singularName": "",
            "namespaced": True,
            "kind": "CronTab",
            "verbs": ["get", "patch", "update"],
        },
    ]


@pytest.mark.parametrize("system_user", [False, True])
def test_cluster_scoped_custom_resources_are_not_namespaced(system_user: bool) -> None:
    found = registry(crd(scope="Cluster"))
    listed = discovery.resource_list(found, "stable.example.com", "v1", system_user=system_user)
    assert listed is not None
    (entry,) = listed["resources"]
    assert entry["namespaced"] is False
    assert "shortNames" not in entry
    assert "categories" not in entry


def test_every_served_version_has_a_resource_list() -> None:
    found = registry(crd(versions=("v1", "v2")))
    for version in ("v1", "v2"):
        listed = discovery.resource_list(found, "stable.example.com", version, system_user=False)
        assert listed is not None
        assert [r["name"] for r in listed["resources"]] == ["crontabs"]
    assert discovery.resource_list(found, "stable.example.com", "v3", system_user=False) is None


def test_another_registry_does_not_see_the_group() -> None:
    assert discovery.api_group(resources.Registry(), "stable.example.com") is None
    assert (
        discovery.resource_list(resources.Registry(), "stable.example.com", "v1", system_user=True)
        is None
    )


def test_a_custom_resource_publishes_its_crds_singular_name() -> None:
    found = registry(crd(names={"singular": "crontabentry"}))
    listed = discovery.resource_list(found, "stable.example.com", "v1", system_user=False)
    assert listed is not None
    assert listed["resources"][0]["singularName"] == "crontabentry"


@pytest.mark.parametrize(
    ("group", "version", "plural", "singular"),
    [
        ("", "v1", "pods", "pod"),
        ("", "v1", "endpoints", "endpoints"),
        ("", "v1", "serviceaccounts", "serviceaccount"),
        ("apps", "v1", "deployments", "deployment"),
        ("discovery.k8s.io", "v1", "endpointslices", "endpointslice"),
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition"),
    ],
)
def test_built_in_singular_names_are_kube_apiservers(
    group: str, version: str, plural: str, singular: str
) -> None:
    listed = discovery.resource_list(resources.Registry(), group, version, system_user=True)
    assert listed is not None
    entries = {r["name"]: r for r in listed["resources"]}
    assert entries[plural]["singularName"] == singular
