"""The container environment kubelet would give a container, and `$(VAR)` expansion."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, strategies as st

from arktos_lite.agent import _env as env
from arktos_lite.api import resources


class FakeReader:
    """ConfigMaps and Secrets of one cluster, counting every read."""

    def __init__(self, objects: Mapping[tuple[str, str, str, str], dict[str, Any]]) -> None:
        self.objects = dict(objects)
        self.reads: list[tuple[str, str, str, str]] = []

    async def get(
        self, resource: resources.Resource, name: str, *, tenant: str, namespace: str
    ) -> dict[str, Any] | None:
        key = (resource.plural, tenant, namespace, name)
        self.reads.append(key)
        return self.objects.get(key)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def config_map(name: str, data: dict[str, str], *, tenant: str = "t1", namespace: str = "ns"):
    return {("configmaps", tenant, namespace, name): {"metadata": {"name": name}, "data": data}}


def secret(name: str, data: dict[str, str], *, tenant: str = "t1", namespace: str = "ns"):
    encoded = {k: b64(v) for k, v in data.items()}
    return {("secrets", tenant, namespace, name): {"metadata": {"name": name}, "data": encoded}}


POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "namespace": "ns",
        "tenant": "t1",
        "uid": "uid-1",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"\n'},
    },
    "spec": {"nodeName": "node-a", "serviceAccountName": "builder"},
    "status": {"podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
}


async def resolve(
    container: dict[str, Any],
    reader: FakeReader | None = None,
    *,
    pod: dict[str, Any] = POD,
    **kwargs: Any,
) -> list[tuple[str, str]]:
    return await env.container_env(
        pod=pod,
        container={"name": "c", **container},
        reader=reader or FakeReader({}),
        node_ip="192.168.1.2",
        pod_ip="10.0.0.5",
        **kwargs,
    )


async def test_plain_values_in_declaration_order() -> None:
    result = await resolve({"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]})
    assert result == [("B", "2"), ("A", "1")]


async def test_value_expands_earlier_variables_only() -> None:
    result = await resolve(
        {
            "env": [
                {"name": "HOST", "value": "db"},
                {"name": "URL", "value": "postgres://$(HOST):$(PORT)/x"},
                {"name": "PORT", "value": "5432"},
                {"name": "COST", "value": "$$(HOST) and $$5"},
            ]
        }
    )
    assert dict(result) == {
        "HOST": "db",
        "URL": "postgres://db:$(PORT)/x",
        "PORT": "5432",
        "COST": "$(HOST) and $5",
    }


async def test_env_from_then_env_overrides_and_prefix() -> None:
    reader = FakeReader(
        config_map("cfg", {"MODE": "fast", "LEVEL": "3", "bad key": "x", "1ST": "y"})
        | secret("creds", {"password": "s3cr3t"})
    )
    result = await resolve(
        {
            "envFrom": [
                {"configMapRef": {"name": "cfg"}},
                {"secretRef": {"name": "creds"}, "prefix": "DB_"},
            ],
            "env": [
                {"name": "MODE", "value": "slow"},
                {"name": "SUMMARY", "value": "$(LEVEL)/$(DB_password)"},
            ],
        },
        reader,
    )
    values = dict(result)
    assert values == {
        "LEVEL": "3",
        "DB_password": "s3cr3t",
        "MODE": "slow",
        "SUMMARY": "3/s3cr3t",
    }
    # envFrom first, then env entries in their order (a redefinition moves to its place).
    assert [name for name, _ in result][-2:] == ["MODE", "SUMMARY"]
    assert "bad key" not in values
    assert "1ST" not in values


async def test_key_refs_read_each_object_once() -> None:
    reader = FakeReader(config_map("cfg", {"a": "1", "b": "2"}) | secret("s", {"k": "v\x00w"}))
    result = await resolve(
        {
            "envFrom": [{"configMapRef": {"name": "cfg"}}],
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b"}}},
                {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "K2", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
        },
        reader,
    )
    assert dict(result)["A"] == "1"
    assert dict(result)["K"] == "v\x00w"
    assert sorted(reader.reads) == [
        ("configmaps", "t1", "ns", "cfg"),
        ("secrets", "t1", "ns", "s"),
    ]


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {"envFrom": [{"configMapRef": {"name": "missing"}}]},
            'configmap "missing" not found',
        ),
        ({"envFrom": [{"secretRef": {"name": "missing"}}]}, 'secret "missing" not found'),
        (
            {
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}
                ]
            },
            'configmap "nope" not found',
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
            "couldn't find key k in ConfigMap ns/cfg",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
            'secret "nope" not found',
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            "couldn't find key k in Secret ns/s",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]},
            "unsupported fieldPath: spec.hostname",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]},
            "unsupported container resource : limits.gpu",
        ),
    ],
)
async def test_missing_sources_fail_with_kubelets_message(
    container: dict[str, Any], message: str
) -> None:
    reader = FakeReader(config_map("cfg", {"a": "1"}) | secret("s", {"b": "2"}))
    with pytest.raises(env.ContainerConfigError) as raised:
        await resolve(container, reader)
    assert str(raised.value) == message


async def test_optional_sources_are_skipped() -> None:
    reader = FakeReader(config_map("cfg", {"a": "1"}))
    result = await resolve(
        {
            "envFrom": [
                {"configMapRef": {"name": "gone", "optional": True}},
                {"secretRef": {"name": "gone", "optional": True}},
            ],
            "env": [
                {"name": "X", "value": "x"},
                {
                    "name": "X",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "cfg", "key": "zz", "optional": True}
                    },
                },
                {
                    "name": "Y",
                    "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}},
                },
                {"name": "EMPTY"},
            ],
        },
        reader,
    )
    # An absent optional key leaves the variable as it was; a bare name is set empty.
    assert result == [("X", "x"), ("EMPTY", "")]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "web-1"),
        ("metadata.namespace", "ns"),
        ("metadata.uid", "uid-1"),
        ("metadata.tenant", "t1"),
        ("metadata.labels['app']", "web"),
        ("metadata.labels['absent']", ""),
        ("metadata.annotations['note']", 'say "hi"\n'),
        ("metadata.labels", 'app="web"\ntier="front"'),
        ("metadata.annotations", 'note="say \\"hi\\"\\n"'),
        ("spec.nodeName", "node-a"),
        ("spec.serviceAccountName", "builder"),
        ("status.hostIP", "192.168.1.2"),
        ("status.hostIPs", "192.168.1.2"),
        ("status.podIP", "10.0.0.5"),
        ("status.podIPs", "10.0.0.5,fd00::5"),
    ],
)
async def test_field_refs(path: str, value: str) -> None:
    result = await resolve({"env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}}]})
    assert result == [("V", value)]


def resources_container(**resources_spec: Any) -> dict[str, Any]:
    return {"resources": resources_spec}


@pytest.mark.parametrize(
    ("spec", "field", "divisor", "allocatable", "value"),
    [
        ({"limits": {"cpu": "500m"}}, "limits.cpu", None, None, "1"),
        ({"limits": {"cpu": "1500m"}}, "limits.cpu", "0", None, "2"),
        ({"limits": {"cpu": "1500m"}}, "limits.cpu", "1m", None, "1500"),
        ({"limits": {"cpu": "250m"}}, "limits.cpu", "100m", None, "3"),
        ({"requests": {"cpu": "2"}}, "requests.cpu", None, None, "2"),
        ({"limits": {"memory": "64Mi"}}, "limits.memory", None, None, str(64 * 2**20)),
        ({"limits": {"memory": "64Mi"}}, "limits.memory", "1Mi", None, "64"),
        ({"limits": {"memory": "1G"}}, "limits.memory", "1Gi", None, "1"),
        ({"requests": {"memory": "1Gi"}}, "limits.memory", "1Mi", None, "1024"),
        ({}, "limits.memory", "1Mi", None, "0"),
        ({}, "limits.cpu", None, {"cpu": "4", "memory": "8Gi"}, "4"),
        ({}, "limits.memory", "1Gi", {"cpu": "4", "memory": "8Gi"}, "8"),
        ({"limits": {"cpu": "3"}}, "requests.cpu", None, None, "3"),
        ({}, "requests.ephemeral-storage", None, None, "0"),
        ({"limits": {"ephemeral-storage": "1k"}}, "limits.ephemeral-storage", None, None, "1000"),
    ],
)
async def test_resource_field_refs(
    spec: dict[str, Any],
    field: str,
    divisor: str | None,
    allocatable: dict[str, str] | None,
    value: str,
) -> None:
    ref: dict[str, Any] = {"resource": field}
    if divisor is not None:
        ref["divisor"] = divisor
    result = await resolve(
        {"resources": spec, "env": [{"name": "R", "valueFrom": {"resourceFieldRef": ref}}]},
        node_allocatable=allocatable,
    )
    assert result == [("R", value)]


async def test_system_tenant_and_default_namespace_when_unset() -> None:
    reader = FakeReader(config_map("cfg", {"a": "1"}, tenant="system", namespace="default"))
    pod = {"metadata": {"name": "p"}, "spec": {}}
    result = await resolve({"envFrom": [{"configMapRef": {"name": "cfg"}}]}, reader, pod=pod)
    assert result == [("a", "1")]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("PATH", True),
        ("my.env-name", True),
        ("_x1", True),
        ("-x", True),
        (".x", True),
        ("1x", False),
        ("", False),
        (".", False),
        ("..", False),
        ("..x", False),
        ("a b", False),
        ("a=b", False),
    ],
)
def test_env_var_names(name: str, valid: bool) -> None:
    assert env.is_env_var_name(name) is valid


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("plain", "plain"),
        ("$(A)", "1"),
        ("$(A)$(B)", "12"),
        ("x$(A)y", "x1y"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("$$", "$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$A", "$A"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("$(A)$", "1$"),
        ("$(EMPTY)x", "x"),
        ("$((A))", "$((A))"),
        ("ü$(A)ü", "ü1ü"),
    ],
)
def test_expand_table(text: str, expanded: str) -> None:
    assert env.expand([text], {"A": "1", "B": "2", "EMPTY": ""}) == [expanded]


_NAMES = st.text(alphabet="ABCxyz_", min_size=1, max_size=4)
_PLAIN = st.text(alphabet=st.characters(blacklist_characters="$()"), max_size=8)


@given(st.lists(st.tuples(_PLAIN, _NAMES), max_size=5), st.dictionaries(_NAMES, _PLAIN))
def test_expand_replaces_each_reference(
    parts: list[tuple[str, str]], values: dict[str, str]
) -> None:
    text = "".join(f"{plain}$({name})" for plain, name in parts)
    wanted = "".join(plain + values.get(name, f"$({name})") for plain, name in parts)
    assert env.expand([text], values) == [wanted]


@given(st.text(alphabet="ab$()", max_size=20))
def test_escaped_text_expands_to_itself(text: str) -> None:
    # `$$` escapes: doubling every `$` makes any text come out unchanged.
    assert env.expand([text.replace("$", "$$")], {"a": "X", "b": "Y"}) == [text]


def vm_pod(**vm: Any) -> dict[str, Any]:
    return {**POD, "spec": {"virtualMachine": {"name": "vm", "image": "cirros", **vm}}}


async def test_a_key_pair_is_the_public_key_in_its_secret() -> None:
    reader = FakeReader(
        {
            **secret("k1", {"publicKey": "ssh-ed25519 AAAA one\n"}),
            **secret("k2", {"ssh-publickey": "ssh-rsa BBBB two"}),
        }
    )
    assert await env.vm_public_key(pod=vm_pod(keyPairName="k1"), reader=reader) == (
        "ssh-ed25519 AAAA one"
    )
    assert await env.vm_public_key(pod=vm_pod(keyPairName="k2"), reader=reader) == (
        "ssh-rsa BBBB two"
    )
    # The pod's own publicKey wins, and a VM without a key pair reads nothing.
    own = vm_pod(keyPairName="k1", publicKey="ssh-ed25519 OWN")
    assert await env.vm_public_key(pod=own, reader=reader) is None
    assert await env.vm_public_key(pod=vm_pod(publicKey="x"), reader=reader) is None
    assert reader.reads == [("secrets", "t1", "ns", "k1"), ("secrets", "t1", "ns", "k2")]


async def test_a_missing_key_pair_is_a_config_error() -> None:
    reader = FakeReader(
        {
            **secret("k1", {"publicKey": "x"}, tenant="other"),
            **secret("empty", {"id_rsa": "private"}),
        }
    )
    with pytest.raises(env.ContainerConfigError) as missing:
        await env.vm_public_key(pod=vm_pod(keyPairName="k1"), reader=reader)
    assert str(missing.value) == 'key pair "k1" not found: no secret "k1" in namespace ns'
    with pytest.raises(env.ContainerConfigError) as no_key:
        await env.vm_public_key(pod=vm_pod(keyPairName="empty"), reader=reader)
    assert str(no_key.value) == (
        'key pair "empty": secret "empty" in namespace ns has no publicKey or ssh-publickey key'
    )
