"""What an `etcd://` store URL names: endpoints, key prefix and TLS files."""

from __future__ import annotations

import pathlib
import urllib.parse

import pytest

from arktos_lite.storage import _etcd


def _parse(url: str) -> tuple[list[str], bytes, object]:
    return _etcd.parse_url(urllib.parse.urlsplit(url))


@pytest.mark.parametrize(
    ("url", "endpoints", "prefix"),
    [
        ("etcd://127.0.0.1:2379", ["127.0.0.1:2379"], b""),
        ("etcd://127.0.0.1:2379/", ["127.0.0.1:2379"], b""),
        ("etcd://a:1,b:2,c:3/arktos", ["a:1", "b:2", "c:3"], b"/arktos"),
        ("etcd://a:1/arktos/p0/", ["a:1"], b"/arktos/p0"),
        ("etcd://etcd.local", ["etcd.local:2379"], b""),
        ("etcd://[::1]:2380,[::1]/x", ["[::1]:2380", "[::1]:2379"], b"/x"),
        ("etcd://a:1/caf%C3%A9", ["a:1"], "/café".encode()),
    ],
)
def test_endpoints_and_prefix(url: str, endpoints: list[str], prefix: bytes) -> None:
    assert _parse(url) == (endpoints, prefix, None)


def test_tls_files_are_read(tmp_path: pathlib.Path) -> None:
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_bytes(name.encode())
    url = (
        f"etcd+https://a:1/p?cacert={tmp_path}/ca.pem"
        f"&cert={tmp_path}/cert.pem&key={tmp_path}/key.pem"
    )

    endpoints, prefix, tls = _parse(url)

    assert (endpoints, prefix) == (["a:1"], b"/p")
    assert tls == _etcd._etcd_client.TLS(ca=b"ca", cert=b"cert", key=b"key")


def test_tls_without_files_trusts_the_system_roots() -> None:
    assert _parse("etcd+https://a:1")[2] == _etcd._etcd_client.TLS(ca=None, cert=None, key=None)


@pytest.mark.parametrize(
    "url",
    [
        "etcd://",
        "etcd:///prefix",
        "etcd://user@a:1",
        "etcd://a:1?cacert=/ca.pem",
        "etcd+https://a:1?cert=/cert.pem",
        "etcd+https://a:1?colour=blue",
    ],
)
def test_bad_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="etcd URL"):
        _parse(url)


def test_range_end_covers_exactly_the_prefix() -> None:
    assert _etcd._range_end(b"/a") == b"/b"
    assert _etcd._range_end(b"/a\xff") == b"/b"
    assert _etcd._range_end(b"\xff\xff") == b"\x00"
