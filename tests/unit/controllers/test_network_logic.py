"""The network controller's objects: the default Network, which Network a pod is on, and
the Mizar VPC, subnet and CRDs a mizar Network gets (accepted by the CRD machinery, their
objects valid against them)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, strategies as st

from arktos_lite.api import _customresources as customresources, _validation as validation
from arktos_lite.controllers import _network as network

Obj = dict[str, Any]


def mizar_network(name: str = "m", *, tenant: str = "t1", vpc: str | None = None) -> Obj:
    spec: Obj = {"type": "mizar"}
    if vpc is not None:
        spec["vpcID"] = vpc
    return {"metadata": {"name": name, "tenant": tenant}, "spec": spec}


def test_the_default_network_is_flat_and_valid() -> None:
    obj = network.default_network("t1")
    assert obj["metadata"] == {"name": "default", "tenant": "t1"}
    assert obj["spec"] == {"type": "flat"}
    assert validation.validate("arktos.futurewei.com", "Network", obj, None) == []


def test_a_pod_is_on_the_network_its_label_names_or_default() -> None:
    assert network.network_of({"metadata": {}}) == "default"
    assert network.network_of({"metadata": {"labels": {"app": "x"}}}) == "default"
    labelled = {"metadata": {"labels": {"arktos.futurewei.com/network": "blue"}}}
    assert network.network_of(labelled) == "blue"


def test_mizar_names_follow_arktos() -> None:
    assert network.mizar_names(mizar_network(vpc="vpc0")) == ("vpc0", "vpc0-subnet")
    assert network.mizar_names(mizar_network(tenant="acme")) == (
        "acme-default-network",
        "acme-default-network-subnet",
    )


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_vnis_are_stable_24_bit_values_apart_from_mizars_own(tenant: str, vpc: str) -> None:
    vni = int(network.vni_of(tenant, vpc))
    assert 2 <= vni < 1 << 24
    assert network.vni_of(tenant, vpc) == str(vni)


def test_vpc_and_subnet_carry_mizars_fields() -> None:
    net = mizar_network(vpc="vpc0")
    vpc = network.vpc_object(net)
    subnet = network.subnet_object(net)
    assert (vpc["kind"], vpc["metadata"]["name"]) == ("Vpc", "vpc0")
    assert (subnet["kind"], subnet["metadata"]["name"]) == ("Subnet", "vpc0-subnet")
    assert {k: vpc["spec"][k] for k in ("ip", "prefix")} == {"ip": "21.0.0.0", "prefix": "16"}
    assert subnet["spec"]["vpc"] == "vpc0"
    assert subnet["spec"]["vni"] == vpc["spec"]["vni"]
    assert subnet["spec"]["bouncers"] == 1
    assert vpc["metadata"]["labels"] == {"arktos.futurewei.com/network": "m"}


def test_the_mizar_crds_are_shared_and_serve_valid_objects() -> None:
    vpc_crd, subnet_crd = network.mizar_crds()
    net = mizar_network(vpc="vpc0")
    for crd, obj in ((vpc_crd, network.vpc_object(net)), (subnet_crd, network.subnet_object(net))):
        assert crd["metadata"]["labels"] == {"arktos.futurewei.com/crd-sharing-policy": "forced"}
        (served,) = customresources.resources_of(crd, tenant="system")
        assert (served.group, served.version, served.plural) == (
            "mizar.com",
            "v1",
            crd["spec"]["names"]["plural"],
        )
        assert served.namespaced
        kind = served.custom
        assert kind is not None
        assert kind.shared
        prepared = {**obj, "metadata": {**obj["metadata"], "tenant": "t1"}}
        assert kind.prepare(prepared) == []
        assert kind.validate(prepared, None) == []
        # Fields Mizar's operator adds are kept.
        extra = {**prepared, "spec": {**prepared["spec"], "provisiondelay": "1s", "dummy": 1}}
        assert kind.prepare(extra) == []
