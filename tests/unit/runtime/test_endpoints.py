"""`--runtime-endpoint` parsing: what the command line accepts and how it says no."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from arktos_lite import runtime
from arktos_lite.runtime import _endpoints


def test_parses_named_runtimes_in_order() -> None:
    endpoints = runtime.parse_endpoints(
        "containerd,container,unix:///run/containerd/containerd.sock; "
        "virtlet , vm , /run/virtlet.sock;remote,container,tcp://10.0.0.5:3000;"
    )
    assert endpoints == (
        runtime.Endpoint("containerd", "container", "unix:///run/containerd/containerd.sock"),
        runtime.Endpoint("virtlet", "vm", "/run/virtlet.sock"),
        runtime.Endpoint("remote", "container", "tcp://10.0.0.5:3000"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no runtime endpoints"),
        (" ; ", "no runtime endpoints"),
        ("a,container", "has 2 field(s)"),
        ("a,container,/x,extra", "has 4 field(s)"),
        ("a,container,/x;;b,vm,/y", "has 1 field(s)"),
        ("a,pod,/x", "unknown workload type 'pod'"),
        ("a,container,/x;a,vm,/y", "'a' is used twice"),
        (",container,/x", "name '' is empty"),
        ("a,container,", "address '' is empty"),
        ("a,container,unix://relative.sock", "absolute path"),
        ("a,container,http://host:80", "unsupported scheme"),
        ("a,container,host", "expected a unix socket or host:port"),
        ("a,container,host:http", "expected a unix socket or host:port"),
        ("a,container,host:70000", "expected a unix socket or host:port"),
    ],
)
def test_bad_lists_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        runtime.parse_endpoints(text)


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("unix:///run/c.sock", "unix:///run/c.sock"),
        ("unix:/run/c.sock", "unix:///run/c.sock"),
        ("/run/c.sock", "unix:///run/c.sock"),
        ("tcp://127.0.0.1:3000", "127.0.0.1:3000"),
        ("localhost:3000", "localhost:3000"),
        ("[::1]:3000", "[::1]:3000"),
    ],
)
def test_addresses_become_grpc_targets(address: str, target: str) -> None:
    assert _endpoints.grpc_target(address) == target


_names = st.text(
    alphabet=st.characters(codec="ascii", categories=("L", "N"), include_characters="-_."),
    min_size=1,
    max_size=12,
)
_addresses = st.one_of(
    st.builds(lambda name: f"unix:///run/{name}.sock", _names),
    st.builds(lambda name: f"/var/run/{name}", _names),
    st.builds(lambda port: f"tcp://127.0.0.1:{port}", st.integers(1, 65535)),
    st.builds(lambda port: f"localhost:{port}", st.integers(1, 65535)),
)
_endpoint_lists = st.lists(
    st.builds(runtime.Endpoint, _names, st.sampled_from(runtime.WORKLOAD_TYPES), _addresses),
    min_size=1,
    max_size=5,
    unique_by=lambda endpoint: endpoint.name,
)


@given(_endpoint_lists)
def test_format_and_parse_round_trip(endpoints: list[runtime.Endpoint]) -> None:
    assert runtime.parse_endpoints(runtime.format_endpoints(endpoints)) == tuple(endpoints)
