"""The endpoints controller's pure parts: which pods a Service selects, the Endpoints
subsets (ready and not, named ports, repacking, truncation) and the EndpointSlices
(labels, owner, conditions, 100 per slice, slices kept rather than replaced)."""

from __future__ import annotations

import ipaddress
from typing import Any

import hypothesis.strategies as st
from hypothesis import given

from arktos_lite.controllers import _endpoints as ep

Obj = dict[str, Any]

READY_AT = "2024-05-01T12:00:00Z"


def service(
    name: str = "web",
    *,
    selector: dict[str, str] | None = None,
    ports: list[Obj] | None = None,
    labels: dict[str, str] | None = None,
    cluster_ip: str = "10.96.0.10",
    **spec: Any,
) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "default",
            "tenant": "t1",
            "uid": f"uid-{name}",
            "creationTimestamp": "2024-05-01T10:00:00Z",
        },
        "spec": {
            "selector": {"app": "web"} if selector is None else selector,
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
            if ports is None
            else ports,
            "clusterIP": cluster_ip,
            "ipFamilies": ["IPv6" if ":" in cluster_ip else "IPv4"] if cluster_ip != "None" else [],
            **spec,
        },
    }
    if labels:
        body["metadata"]["labels"] = labels
    return body


def pod(
    name: str,
    ip: str | None = "10.244.0.5",
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    node: str = "node-1",
    tenant: str = "t1",
    container_ports: list[Obj] | None = None,
    deleting: bool = False,
    phase: str = "Running",
    ips: list[str] | None = None,
) -> Obj:
    status: Obj = {
        "phase": phase,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": READY_AT,
            }
        ],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": i} for i in (ips or [ip])]
    meta: Obj = {
        "name": name,
        "namespace": "default",
        "tenant": tenant,
        "uid": f"uid-{name}",
        "labels": {"app": "web"} if labels is None else labels,
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T13:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "x", "ports": container_ports or []}],
        },
        "status": status,
    }


def ref(name: str) -> Obj:
    return {
        "kind": "Pod",
        "namespace": "default",
        "tenant": "t1",
        "name": name,
        "uid": f"uid-{name}",
    }


def address(name: str, ip: str, node: str = "node-1") -> Obj:
    return {"ip": ip, "nodeName": node, "targetRef": ref(name)}


# Selecting pods


def test_a_service_selects_pods_having_every_label_of_its_selector() -> None:
    selector = ep.selector_of(service(selector={"app": "web", "tier": "front"}))
    assert selector == {"app": "web", "tier": "front"}
    assert ep.selects(selector, pod("a", labels={"app": "web", "tier": "front", "x": "y"}))
    assert not ep.selects(selector, pod("b", labels={"app": "web"}))
    assert not ep.selects(selector, pod("c", labels={"app": "web", "tier": "back"}))
    assert not ep.selects(selector, pod("d", labels={}))


def test_services_without_a_selector_and_external_names_are_not_managed() -> None:
    assert ep.managed(service())
    assert not ep.managed(service(selector={}))
    without = service()
    del without["spec"]["selector"]
    assert ep.selector_of(without) is None
    assert not ep.managed(without)
    assert not ep.managed(service(type="ExternalName", externalName="example.com"))


# Endpoints


def test_ready_pods_are_addresses_and_the_others_not_ready_addresses() -> None:
    pods = [pod("b", "10.244.0.7"), pod("a", "10.244.0.6", ready=False), pod("c", "10.244.1.2")]
    assert ep.subsets_for(service(), pods) == [
        {
            "addresses": [address("b", "10.244.0.7"), address("c", "10.244.1.2")],
            "notReadyAddresses": [address("a", "10.244.0.6")],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
    ]


def test_pods_without_an_address_terminal_or_being_deleted_are_left_out() -> None:
    pods = [
        pod("no-ip", None),
        pod("done", "10.244.0.8", phase="Succeeded"),
        pod("failed", "10.244.0.9", phase="Failed"),
        pod("going", "10.244.0.10", deleting=True),
        pod("ok", "10.244.0.11"),
    ]
    subsets = ep.subsets_for(service(), pods)
    assert [a["targetRef"]["name"] for a in subsets[0]["addresses"]] == ["ok"]
    assert "notReadyAddresses" not in subsets[0]
    # publishNotReadyAddresses: every pod with an address is ready, even one being deleted.
    published = ep.subsets_for(
        service(publishNotReadyAddresses=True), [*pods, pod("x", "10.244.0.12", ready=False)]
    )
    assert [a["targetRef"]["name"] for a in published[0]["addresses"]] == ["going", "ok", "x"]


def test_addresses_sort_by_ip_numerically() -> None:
    pods = [pod("a", "10.244.0.10"), pod("b", "10.244.0.9"), pod("c", "10.244.0.100")]
    subsets = ep.subsets_for(service(), pods)
    assert [a["ip"] for a in subsets[0]["addresses"]] == [
        "10.244.0.9",
        "10.244.0.10",
        "10.244.0.100",
    ]


def test_named_ports_are_looked_up_in_each_pod() -> None:
    svc = service(
        ports=[
            {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
        ]
    )
    pods = [
        pod(
            "old",
            "10.244.0.5",
            container_ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}],
        ),
        pod(
            "new",
            "10.244.0.6",
            container_ports=[{"name": "web", "containerPort": 8081, "protocol": "TCP"}],
        ),
        # The name with another protocol is no match.
        pod(
            "udp",
            "10.244.0.7",
            container_ports=[{"name": "web", "containerPort": 8080, "protocol": "UDP"}],
        ),
    ]
    subsets = ep.subsets_for(svc, pods)
    assert subsets == [
        {
            "addresses": [address("old", "10.244.0.5")],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        },
        {
            "addresses": [address("new", "10.244.0.6")],
            "ports": [{"name": "http", "port": 8081, "protocol": "TCP"}],
        },
        {
            "addresses": [
                address("old", "10.244.0.5"),
                address("new", "10.244.0.6"),
                address("udp", "10.244.0.7"),
            ],
            "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"}],
        },
    ]


def test_repacking_puts_addresses_with_the_same_ports_together() -> None:
    raw = [
        {
            "addresses": [address("a", "10.0.0.1")],
            "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
        },
        {
            "addresses": [address("b", "10.0.0.2")],
            "ports": [{"name": "q", "port": 2, "protocol": "TCP"}],
        },
        {
            "addresses": [address("a", "10.0.0.1")],
            "ports": [{"name": "q", "port": 2, "protocol": "TCP"}],
        },
        {
            "addresses": [address("b", "10.0.0.2")],
            "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
        },
        # Not ready for one port: not ready there, whatever another subset says.
        {
            "notReadyAddresses": [address("c", "10.0.0.3")],
            "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
        },
        {
            "addresses": [address("c", "10.0.0.3")],
            "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
        },
    ]
    assert ep.repack(raw) == [
        {
            "addresses": [address("a", "10.0.0.1"), address("b", "10.0.0.2")],
            "notReadyAddresses": [address("c", "10.0.0.3")],
            "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
        },
        {
            "addresses": [address("a", "10.0.0.1"), address("b", "10.0.0.2")],
            "ports": [{"name": "q", "port": 2, "protocol": "TCP"}],
        },
    ]
    same_addresses = [
        {
            "addresses": [address("a", "10.0.0.1")],
            "ports": [{"name": "q", "port": 2, "protocol": "TCP"}],
        },
        {
            "addresses": [address("a", "10.0.0.1")],
            "ports": [{"name": "p", "port": 1, "protocol": "TCP"}],
        },
    ]
    assert ep.repack(same_addresses) == [
        {
            "addresses": [address("a", "10.0.0.1")],
            "ports": [
                {"name": "p", "port": 1, "protocol": "TCP"},
                {"name": "q", "port": 2, "protocol": "TCP"},
            ],
        }
    ]


def test_a_headless_service_without_ports_lists_bare_addresses() -> None:
    svc = service(cluster_ip="None", ports=[])
    assert ep.subsets_for(svc, [pod("a", "10.244.0.5")]) == [
        {"addresses": [address("a", "10.244.0.5")]}
    ]
    assert ep.endpoint_labels(svc) == {
        ep.HEADLESS_LABEL: "",
        ep.ENDPOINTS_MANAGED_BY_LABEL: "endpoint-controller",
    }


def test_the_address_matches_the_services_family() -> None:
    dual = pod("a", "10.244.0.5", ips=["10.244.0.5", "fd00::5"])
    assert (
        ep.subsets_for(service(cluster_ip="fd00:96::10"), [dual])[0]["addresses"][0]["ip"]
        == "fd00::5"
    )
    assert ep.subsets_for(service(), [dual])[0]["addresses"][0]["ip"] == "10.244.0.5"
    # A pod with no address of the family is left out.
    assert ep.subsets_for(service(cluster_ip="fd00:96::10"), [pod("b", "10.244.0.6")]) == []


def test_a_pods_hostname_shows_where_its_subdomain_names_the_service() -> None:
    named = pod("a", "10.244.0.5")
    named["spec"].update(hostname="a-0", subdomain="web")
    other = pod("b", "10.244.0.6")
    other["spec"].update(hostname="b-0", subdomain="elsewhere")
    addresses = ep.subsets_for(service(), [named, other])[0]["addresses"]
    assert [a.get("hostname") for a in addresses] == ["a-0", None]


def test_endpoints_are_written_only_when_something_changed() -> None:
    svc = service(labels={"team": "a"})
    pods = [pod("a", "10.244.0.5")]
    first = ep.desired_endpoints(svc, pods, None)
    assert first is not None
    assert first["metadata"] == {
        "name": "web",
        "namespace": "default",
        "tenant": "t1",
        "labels": {"team": "a", ep.ENDPOINTS_MANAGED_BY_LABEL: "endpoint-controller"},
        "annotations": {ep.TRIGGER_TIME_ANNOTATION: READY_AT},
    }
    stored = {**first, "metadata": {**first["metadata"], "resourceVersion": "5"}}
    assert ep.desired_endpoints(svc, pods, stored) is None
    # The service's labels follow; the stored object's other metadata stays.
    relabelled = ep.desired_endpoints(service(labels={"team": "b"}), pods, stored)
    assert relabelled is not None
    assert relabelled["metadata"]["labels"]["team"] == "b"
    assert relabelled["metadata"]["resourceVersion"] == "5"
    changed = ep.desired_endpoints(svc, [*pods, pod("b", "10.244.0.6")], stored)
    assert changed is not None
    assert len(changed["subsets"][0]["addresses"]) == 2


def test_past_a_thousand_addresses_endpoints_are_truncated_and_say_so() -> None:
    pods = [
        pod(f"p{i}", str(ipaddress.ip_address("10.244.0.0") + i), ready=i % 2 == 0)
        for i in range(1200)
    ]
    body = ep.desired_endpoints(service(), pods, None)
    assert body is not None
    subset = body["subsets"][0]
    # Every ready address stays; the not ready ones fill what is left.
    assert len(subset["addresses"]) == 600
    assert len(subset["notReadyAddresses"]) == 400
    assert body["metadata"]["annotations"][ep.OVER_CAPACITY_ANNOTATION] == "truncated"


@given(
    st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.sampled_from([80, 81])), max_size=30)
)
def test_repacking_keeps_every_address_port_pair(entries: list[tuple[int, bool, int]]) -> None:
    raw = [
        {
            ("addresses" if ready else "notReadyAddresses"): [address(f"p{i}", f"10.0.0.{i}")],
            "ports": [{"port": port, "protocol": "TCP", "name": f"n{port}"}],
        }
        for i, ready, port in entries
    ]
    pairs = {(i, port) for i, _ready, port in entries}
    repacked = ep.repack(raw)
    found = {
        (int(a["ip"].rsplit(".", 1)[1]), p["port"])
        for s in repacked
        for a in [*s.get("addresses", []), *s.get("notReadyAddresses", [])]
        for p in s["ports"]
    }
    assert found == pairs
    # No address appears twice for one port.
    for s in repacked:
        ips = [a["ip"] for a in [*s.get("addresses", []), *s.get("notReadyAddresses", [])]]
        assert len(ips) == len(set(ips))


# EndpointSlices


def test_a_new_slice_is_labelled_owned_and_lists_pods_with_conditions() -> None:
    svc = service(labels={"team": "a", ep.SERVICE_NAME_LABEL: "spoof"})
    pods = [
        pod("a", "10.244.0.5"),
        pod("b", "10.244.0.6", ready=False),
        pod("c", "10.244.0.7", deleting=True),
    ]
    plan = ep.plan_slices(svc, pods, [])
    assert plan.update == ()
    assert plan.delete == ()
    [created] = plan.create
    assert created["addressType"] == "IPv4"
    assert created["metadata"]["generateName"] == "web-"
    assert created["metadata"]["tenant"] == "t1"
    assert created["metadata"]["labels"] == {
        "team": "a",
        ep.SERVICE_NAME_LABEL: "web",
        ep.MANAGED_BY_LABEL: ep.CONTROLLER_NAME,
    }
    assert created["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": "uid-web",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert created["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    by_name = {e["targetRef"]["name"]: e for e in created["endpoints"]}
    assert by_name["a"] == {
        "addresses": ["10.244.0.5"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "node-1",
        "targetRef": ref("a"),
    }
    assert by_name["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    # A pod being deleted stays, terminating, serving while it is ready.
    assert by_name["c"]["conditions"] == {"ready": False, "serving": True, "terminating": True}


def named(slice_: Obj, name: str, *, version: str = "1") -> Obj:
    slice_ = {
        **slice_,
        "metadata": {
            **slice_["metadata"],
            "name": name,
            "resourceVersion": version,
            "uid": f"uid-{name}",
        },
    }
    slice_["metadata"].pop("generateName", None)
    return slice_


def many(count: int, *, start: int = 0) -> list[Obj]:
    return [
        pod(f"p{i:04}", str(ipaddress.ip_address("10.244.0.0") + i))
        for i in range(start, start + count)
    ]


def test_slices_hold_at_most_a_hundred_endpoints() -> None:
    plan = ep.plan_slices(service(), many(250), [])
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]
    assert (
        ep.plan_slices(service(), many(30), [], max_per_slice=10).create[0]["endpoints"].__len__()
        == 10
    )


def test_slices_are_kept_and_updated_in_place() -> None:
    svc = service()
    [first] = ep.plan_slices(svc, many(3), []).create
    stored = named(first, "web-abcde")
    # Nothing changed: nothing to write.
    assert ep.plan_slices(svc, many(3), [stored]).empty
    # A pod gone, one added, one not ready any more: one update of the same slice.
    changed = many(2, start=1)
    changed[0]["status"]["conditions"][0]["status"] = "False"
    changed.append(pod("extra", "10.244.9.9"))
    plan = ep.plan_slices(svc, changed, [stored])
    assert plan.create == ()
    assert plan.delete == ()
    [updated] = plan.update
    assert updated["metadata"]["name"] == "web-abcde"
    assert updated["metadata"]["resourceVersion"] == "1"
    names = [e["targetRef"]["name"] for e in updated["endpoints"]]
    assert names == ["p0001", "p0002", "extra"]
    assert updated["endpoints"][0]["conditions"]["ready"] is False


def test_new_endpoints_fill_an_unchanged_slice_that_fits_them() -> None:
    svc = service()
    stored = [named(s, f"web-{i}") for i, s in enumerate(ep.plan_slices(svc, many(150), []).create)]
    plan = ep.plan_slices(svc, many(160), stored)
    assert plan.create == ()
    assert plan.delete == ()
    [updated] = plan.update
    assert len(updated["endpoints"]) == 60


def test_a_service_without_endpoints_keeps_one_empty_slice() -> None:
    svc = service()
    [placeholder] = ep.plan_slices(svc, [], []).create
    assert placeholder["endpoints"] == []
    assert placeholder["ports"] == []
    stored = named(placeholder, "web-empty")
    assert ep.plan_slices(svc, [], [stored]).empty
    # Pods come: the empty slice is reused rather than replaced.
    plan = ep.plan_slices(svc, many(2), [stored])
    assert plan.create == ()
    assert plan.delete == ()
    [reused] = plan.update
    assert reused["metadata"]["name"] == "web-empty"
    assert len(reused["endpoints"]) == 2
    assert reused["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    # And when they go, it stays, emptied.
    emptied = ep.plan_slices(svc, [], [named(reused, "web-empty")])
    assert emptied.create == ()
    assert emptied.delete == ()
    assert emptied.update[0]["endpoints"] == []
    assert emptied.update[0]["ports"] == []


def test_slices_of_another_service_of_the_same_name_go() -> None:
    svc = service()
    [old] = ep.plan_slices(service(), many(1), []).create
    old = named(old, "web-old")
    old["metadata"]["ownerReferences"][0]["uid"] = "uid-of-an-earlier-web"
    plan = ep.plan_slices(svc, many(1), [old])
    assert [s["metadata"]["name"] for s in plan.delete] == ["web-old"]
    assert len(plan.create) == 1


def test_a_service_without_an_ip_family_gets_slices_of_both_types_when_headless() -> None:
    svc = service(cluster_ip="None")
    svc["spec"].pop("ipFamilies")
    assert ep.address_types(svc) == ["IPv4", "IPv6"]
    dual = pod("a", "10.244.0.5", ips=["10.244.0.5", "fd00::5"])
    plan = ep.plan_slices(svc, [dual], [])
    assert sorted((s["addressType"], s["endpoints"][0]["addresses"]) for s in plan.create) == [
        ("IPv4", ["10.244.0.5"]),
        ("IPv6", ["fd00::5"]),
    ]
    assert all(s["metadata"]["labels"][ep.HEADLESS_LABEL] == "" for s in plan.create)


def test_a_service_being_deleted_gets_no_new_slices() -> None:
    svc = service()
    svc["metadata"]["deletionTimestamp"] = "2024-05-01T13:00:00Z"
    assert ep.plan_slices(svc, many(2), []).create == ()
