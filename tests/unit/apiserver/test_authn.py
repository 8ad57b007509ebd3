"""Identity: token files, client certificates and the authenticator that combines them."""

from __future__ import annotations

import csv
import io
import pathlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, strategies as st

from arktos_lite.apiserver import _authn as authn, _pki as pki_

User = authn.User

# --- Token files ------------------------------------------------------------------------


def test_token_file_with_quoted_groups_tenants_and_comments(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(
        "# token,user,uid,groups,tenant\n"
        "\n"
        't-alice,alice,uid-1,"dev, ops",T1\n'
        "   # an indented comment\n"
        "t-bob,bob,uid-2\n"
        "t-carol,carol,uid-3,,\n"
        "t-dave, dave , uid-4 ,viewers,tenant-2\r\n"
    )
    entries = authn.load_token_file(path)
    assert [(e.token, e.user) for e in entries] == [
        ("t-alice", User(name="alice", uid="uid-1", groups=("dev", "ops"), tenant="t1")),
        ("t-bob", User(name="bob", uid="uid-2", groups=(), tenant="system")),
        ("t-carol", User(name="carol", uid="uid-3", groups=(), tenant="system")),
        ("t-dave", User(name="dave", uid="uid-4", groups=("viewers",), tenant="tenant-2")),
    ]
    assert "t-alice" not in repr(entries)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("token-only,user", "got 2 fields"),
        ("a,b,c,d,e,f", "got 6 fields"),
        (",user,uid", "empty token"),
        ("tok,,uid", "empty user name"),
        ('tok,user,uid,"dev', "not a CSV record"),
        ("tok,user,uid,,Bad_Tenant", "invalid tenant name"),
        ("tok,user,uid,,all", "means every tenant"),
        ("tok en,user,uid", "whitespace"),
    ],
)
def test_malformed_line_is_an_error_naming_file_and_line(
    tmp_path: pathlib.Path, line: str, problem: str
) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(f"# header\ngood,user,uid\n{line}\n")
    with pytest.raises(authn.TokenFileError, match=problem) as caught:
        authn.load_token_file(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}, line 3: ")


def test_a_repeated_token_is_an_error() -> None:
    with pytest.raises(authn.TokenFileError, match="line 1 again") as caught:
        authn.parse_token_file("tok,alice,1\ntok,bob,2,,t1\n", source="tokens.csv")
    assert caught.value.line == 2


def test_a_missing_token_file_is_an_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(authn.TokenFileError, match="cannot read"):
        authn.load_token_file(tmp_path / "absent.csv")


_field = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=12,
).filter(lambda s: not s.startswith("#") and s.strip() == s)
_tenant = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda t: t != "all"
)


@given(
    rows=st.lists(
        st.tuples(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=20),
            _field,
            _field,
            st.lists(_field.filter(lambda g: "," not in g), max_size=3),
            st.one_of(st.none(), _tenant),
        ),
        max_size=5,
        unique_by=lambda row: row[0],
    )
)
def test_token_file_round_trips_what_csv_writes(
    rows: list[tuple[str, str, str, list[str], str | None]],
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    for token, name, uid, groups, tenant in rows:
        writer.writerow([token, name, uid, ",".join(groups), tenant or ""])
    entries = authn.parse_token_file(out.getvalue())
    assert [(e.token, e.user) for e in entries] == [
        (token, User(name=name, uid=uid, groups=tuple(groups), tenant=tenant or "system"))
        for token, name, uid, groups, tenant in rows
    ]


# --- Client certificates -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pki_.Pki:
    return pki_.ensure_pki(tmp_path_factory.mktemp("data"))


def _der(issued: pki_.ClientCertificate) -> bytes:
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    return cert.public_bytes(serialization.Encoding.DER)


def test_cert_with_tenant_organization_maps_to_that_tenant(pki: pki_.Pki) -> None:
    der = _der(pki_.issue_client_cert(pki, user="alice", tenant="t1", groups=["dev"]))
    assert authn.user_from_certificate(der) == User(name="alice", groups=("dev",), tenant="t1")


def test_cert_without_tenant_organization_is_of_the_system_tenant(pki: pki_.Pki) -> None:
    der = _der(pki_.issue_client_cert(pki, user="ops", groups=["system:masters"]))
    assert authn.user_from_certificate(der) == User(
        name="ops", groups=("system:masters",), tenant="system"
    )


def test_cert_naming_two_tenants_or_a_bad_one_names_nobody(pki: pki_.Pki) -> None:
    two = pki_.issue_client_cert(pki, user="eve", tenant="t1", groups=["tenant:t2"])
    assert authn.user_from_certificate(_der(two)) is None
    bad = pki_.issue_client_cert(pki, user="eve", groups=["tenant:all"])
    assert authn.user_from_certificate(_der(bad)) is None


# --- The authenticator -------------------------------------------------------------------


ALICE = User(name="alice", uid="1", groups=("dev",), tenant="t1")


def _authenticator() -> authn.Authenticator:
    return authn.Authenticator(
        admin_token="admin-secret", tokens=[authn.TokenEntry(token="alice-secret", user=ALICE)]
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer alice-secret", ALICE),
        ("bearer alice-secret", ALICE),
        ("  Bearer   alice-secret  ", ALICE),
        ("Bearer admin-secret", User(name="admin", groups=("system:masters",), tenant="system")),
        ("Bearer alice-secreT", None),
        ("Bearer alice-secret-and-more", None),
        ("Bearer ", None),
        ("Basic YWxpY2U6c2VjcmV0", None),
        ("alice-secret", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_tokens(header: str | None, expected: User | None) -> None:
    assert _authenticator().authenticate(header, None) == expected


def test_a_client_certificate_wins_over_a_token(pki: pki_.Pki) -> None:
    der = _der(pki_.issue_client_cert(pki, user="bob", tenant="t2"))
    user = _authenticator().authenticate("Bearer alice-secret", der)
    assert user == User(name="bob", tenant="t2")


def test_a_certificate_naming_nobody_falls_back_to_the_token(pki: pki_.Pki) -> None:
    der = _der(pki_.issue_client_cert(pki, user="eve", tenant="t1", groups=["tenant:t2"]))
    assert _authenticator().authenticate("Bearer alice-secret", der) == ALICE
    assert _authenticator().authenticate(None, der) is None


def test_two_identities_behind_one_token_are_refused() -> None:
    with pytest.raises(ValueError, match="already in use"):
        authn.Authenticator(admin_token="same", tokens=[authn.TokenEntry(token="same", user=ALICE)])


def test_tokens_are_found_by_digest_and_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = [authn.TokenEntry(token=f"token-{i}", user=ALICE) for i in range(5000)]
    authenticator = authn.Authenticator(tokens=entries)
    compared: list[tuple[bytes, bytes]] = []
    real = authn.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(authn.hmac, "compare_digest", spy)
    assert authenticator.authenticate("Bearer token-4321", None) == ALICE
    # One constant-time comparison, with the one matching entry: no scan over the others.
    assert compared == [(b"token-4321", b"token-4321")]
    compared.clear()
    assert authenticator.authenticate("Bearer token-5000", None) is None
    assert compared == []


# --- The client certificate of a request --------------------------------------------------


def test_peer_certificate_reads_the_asgi_tls_extension(pki: pki_.Pki) -> None:
    issued = pki_.issue_client_cert(pki, user="alice", tenant="t1")
    scope = {
        "scheme": "https",
        "extensions": {"tls": {"client_cert_chain": [issued.cert_pem.decode()]}},
    }
    assert authn.peer_certificate(scope) == _der(issued)
    failed = {
        "scheme": "https",
        "extensions": {
            "tls": {
                "client_cert_chain": [issued.cert_pem.decode()],
                "client_cert_error": "unknown CA",
            }
        },
    }
    assert authn.peer_certificate(failed) is None


def test_peer_certificate_of_plain_http_is_none() -> None:
    assert authn.peer_certificate({"scheme": "http", "extensions": {}}) is None
    assert authn.peer_certificate({"scheme": "https", "extensions": {}}) is None
