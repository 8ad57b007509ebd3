"""How a client reaches and authenticates to the API server, and reading it from kubeconfig.

`Config` is a plain value: where the server is, the credentials, the CA to trust and the
default tenant. `load_kubeconfig` resolves a kubeconfig file the way kubectl does: the
current context or a named one, the `*-data` or file forms (a relative path is relative to
the kubeconfig that names it), `token` or `tokenFile`, `insecure-skip-tls-verify`,
`tls-server-name`, plus Arktos's optional `tenant` of a context. Inline data stays in
memory: nothing is written to disk. Every problem with a file is a `KubeconfigError` that
names the file and what to fix. A context's `namespace` is not read: every request of the
client names its namespace.

`load_partitioned_kubeconfig` reads a partitioned cluster's kubeconfig (`arktos up
--partitions N`): each context that addresses one partition carries, under `extensions`,
an entry named `arktos.futurewei.com/partition` whose `extension` is the partition's
`DataPartitionConfig`. The partitions must hold every tenant exactly once.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import pathlib
from collections.abc import Mapping

import yaml

from arktos_lite.api import partitions
from arktos_lite.client import _routing as routing

DEFAULT_KUBECONFIG = pathlib.Path("~/.arktos/kubeconfig")


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used to connect."""


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """Where the API server is and who the client is to it.

    `tenant` is the tenant requests address by default; None leaves it to the server (the
    caller's own tenant, through Kubernetes' short paths). A client certificate comes from
    files (`cert_file`, `key_file`) or from PEM bytes (`cert_data`, `key_data`).
    `tls_server_name`, as kubectl's `tls-server-name`, is the name sent in TLS SNI and
    checked against the server's certificate instead of the host of `server`.
    `unix_socket` reaches a server on the same machine through its unix socket instead
    (plain HTTP; `server` then only names it, as `http://localhost`).
    """

    server: str
    token: str | None = dataclasses.field(default=None, repr=False)
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    tenant: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = dataclasses.field(default=None, repr=False)
    tls_server_name: str | None = None
    unix_socket: str | None = None

    def __post_init__(self) -> None:
        scheme = self.server.split("://", 1)[0].lower() if "://" in self.server else ""
        if scheme not in ("http", "https"):
            raise ValueError(f"server {self.server!r} must be an http:// or https:// URL")
        if self.unix_socket is not None and scheme != "http":
            raise ValueError("a unix socket speaks plain HTTP: give an http:// server")
        if self.cert_file is not None and self.cert_data is not None:
            raise ValueError("give the client certificate as a file or as data, not both")
        if self.key_file is not None and self.key_data is not None:
            raise ValueError("give the client key as a file or as data, not both")
        has_cert = self.cert_file is not None or self.cert_data is not None
        has_key = self.key_file is not None or self.key_data is not None
        if has_cert != has_key:
            raise ValueError("a client certificate and its key go together; one is missing")

    @property
    def tls(self) -> bool:
        return self.server.lower().startswith("https://")

    @property
    def has_client_cert(self) -> bool:
        return self.cert_file is not None or self.cert_data is not None


def default_kubeconfig_path() -> pathlib.Path:
    """`$KUBECONFIG` (its first entry, as a list of paths), else `~/.arktos/kubeconfig`."""
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry.strip():
            return pathlib.Path(entry.strip()).expanduser()
    return DEFAULT_KUBECONFIG.expanduser()


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None, *, context: str | None = None
) -> Config:
    """The `Config` of `context` (default: the current context) in the kubeconfig at `path`."""
    return _open(path).config(context)


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionedConfig:
    """The servers of a partitioned cluster, from a kubeconfig, in ascending tenant order.

    `current` is the current context's `Config` (its tenant is the client's default).
    """

    current: Config
    partitions: tuple[tuple[partitions.Partition, Config], ...]


def load_partitioned_kubeconfig(
    path: str | os.PathLike[str] | None = None,
) -> PartitionedConfig | None:
    """Every partition a kubeconfig's contexts address; None when its current context
    addresses none (the file is for one server)."""
    reader = _open(path)
    current_name = reader.current_context()
    if reader.partition(current_name) is None:
        return None
    found: dict[str, tuple[partitions.Partition, Config]] = {}
    context_of: dict[str, str] = {}
    for name in reader.context_names():
        partition = reader.partition(name)
        if partition is None:
            continue
        if partition.name in found:
            raise KubeconfigError(
                f"kubeconfig {reader.path}: contexts {context_of[partition.name]!r} and "
                f"{name!r} both address partition {partition.name!r}"
            )
        found[partition.name] = (partition, reader.config(name))
        context_of[partition.name] = name
    try:
        ordered = routing.PartitionMap(partition for partition, _ in found.values())
    except ValueError as error:
        raise KubeconfigError(f"kubeconfig {reader.path}: {error}") from None
    return PartitionedConfig(
        current=reader.config(current_name),
        partitions=tuple(found[partition.name] for partition in ordered.partitions),
    )


def _open(path: str | os.PathLike[str] | None) -> _Reader:
    file = pathlib.Path(path).expanduser() if path is not None else default_kubeconfig_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise KubeconfigError(
            f"cannot read kubeconfig {file}: {error.strerror or error}"
        ) from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KubeconfigError(f"kubeconfig {file} is not valid YAML: {error}") from error
    return _Reader(file, {} if document is None else document)


class _Reader:
    def __init__(self, path: pathlib.Path, document: object) -> None:
        self.path = path
        self.document = self._mapping(document, "the document")

    def current_context(self) -> str:
        name = self._string(self.document, "current-context", "the document")
        if not name:
            raise KubeconfigError(
                f"kubeconfig {self.path} has no current-context; name a context to use"
            )
        return name

    def context_names(self) -> list[str]:
        entries = self.document.get("contexts") or []
        if not isinstance(entries, list):
            raise KubeconfigError(f"kubeconfig {self.path}: contexts must be a list")
        names = []
        for entry in entries:
            name = self._mapping(entry, "an entry of contexts").get("name")
            if isinstance(name, str) and name:
                names.append(name)
        return names

    def partition(self, context: str) -> partitions.Partition | None:
        """The partition the context addresses, from its extension; None if it has none."""
        where = f"context {context!r}"
        extensions = self._named("contexts", "context", context).get("extensions") or []
        if not isinstance(extensions, list):
            raise KubeconfigError(f"{where} in {self.path}: extensions must be a list")
        for entry in extensions:
            entry = self._mapping(entry, f"an extension of {where}")
            if entry.get("name") != partitions.KUBECONFIG_EXTENSION:
                continue
            config = entry.get("extension")
            if not isinstance(config, Mapping) or config.get("kind") != "DataPartitionConfig":
                raise KubeconfigError(
                    f"{where} in {self.path}: extension {partitions.KUBECONFIG_EXTENSION} "
                    "must be a DataPartitionConfig object"
                )
            try:
                partition = partitions.Partition.from_data_partition_config(config)
            except ValueError as error:
                raise KubeconfigError(f"{where} in {self.path}: {error}") from None
            if not partition.name:
                raise KubeconfigError(
                    f"{where} in {self.path}: its DataPartitionConfig names no serviceGroupId"
                )
            return partition
        return None

    def config(self, context: str | None) -> Config:
        name = context or self.current_context()
        where = f"context {name!r}"
        ctx = self._named("contexts", "context", name)
        cluster_name = self._string(ctx, "cluster", where)
        if not cluster_name:
            raise KubeconfigError(f"{where} in {self.path} names no cluster")
        cluster = self._named("clusters", "cluster", cluster_name)
        user_name = self._string(ctx, "user", where)
        user = self._named("users", "user", user_name) if user_name else {}
        in_cluster = f"cluster {cluster_name!r}"
        server = self._string(cluster, "server", in_cluster)
        if not server:
            raise KubeconfigError(f"{in_cluster} in {self.path} has no server")
        insecure = cluster.get("insecure-skip-tls-verify", False)
        if not isinstance(insecure, bool):
            raise KubeconfigError(
                f"{in_cluster} in {self.path}: insecure-skip-tls-verify must be true or false"
            )
        ca_file, ca_data = self._file_or_data(cluster, "certificate-authority", in_cluster)
        if insecure and (ca_file or ca_data):
            # As kubectl: trusting a CA and trusting anything contradict each other.
            raise KubeconfigError(
                f"{in_cluster} in {self.path}: a certificate authority together with"
                " insecure-skip-tls-verify is not allowed"
            )
        of_user = f"user {user_name!r}"
        for plugin in ("exec", "auth-provider"):
            if user.get(plugin) is not None:
                raise KubeconfigError(
                    f"{of_user} in {self.path} uses an {plugin} credential plugin, which is"
                    " not supported; use a token or a client certificate"
                )
        token = self._string(user, "token", of_user) or None
        if token is None:
            token_file = self._string(user, "tokenFile", of_user)
            if token_file:
                token = self._read(token_file, f"{of_user} tokenFile").decode().strip() or None
        cert_file, cert_data = self._file_or_data(user, "client-certificate", of_user)
        key_file, key_data = self._file_or_data(user, "client-key", of_user)
        try:
            return Config(
                server=server,
                token=token,
                ca_file=ca_file,
                ca_data=ca_data,
                cert_file=cert_file,
                key_file=key_file,
                insecure=insecure,
                tenant=self._string(ctx, "tenant", where) or None,
                cert_data=cert_data,
                key_data=key_data,
                tls_server_name=self._string(cluster, "tls-server-name", in_cluster) or None,
            )
        except ValueError as error:
            raise KubeconfigError(f"{where} in {self.path}: {error}") from None

    def _named(self, section: str, key: str, name: str) -> Mapping[str, object]:
        entries = self.document.get(section) or []
        if not isinstance(entries, list):
            raise KubeconfigError(f"kubeconfig {self.path}: {section} must be a list")
        for entry in entries:
            entry = self._mapping(entry, f"an entry of {section}")
            if entry.get("name") == name:
                return self._mapping(entry.get(key) or {}, f"{key} {name!r}")
        raise KubeconfigError(f"kubeconfig {self.path} has no {key} named {name!r}")

    def _file_or_data(
        self, mapping: Mapping[str, object], key: str, where: str
    ) -> tuple[str | None, bytes | None]:
        """`key-data` (base64) wins over `key` (a file), as in kubectl."""
        data = self._string(mapping, f"{key}-data", where)
        if data:
            try:
                return None, base64.b64decode(data, validate=True)
            except binascii.Error as error:
                raise KubeconfigError(
                    f"{where} in {self.path}: {key}-data is not base64: {error}"
                ) from None
        file_name = self._string(mapping, key, where)
        if not file_name:
            return None, None
        file = self._resolve(file_name)
        if not file.is_file():
            raise KubeconfigError(f"{where} in {self.path}: {key} {file} is not a readable file")
        return str(file), None

    def _resolve(self, file_name: str) -> pathlib.Path:
        # As kubectl: a relative path is relative to the kubeconfig that names it.
        return (self.path.parent / pathlib.Path(file_name).expanduser()).absolute()

    def _read(self, file_name: str, what: str) -> bytes:
        file = self._resolve(file_name)
        try:
            return file.read_bytes()
        except OSError as error:
            raise KubeconfigError(
                f"{what} in {self.path}: cannot read {file}: {error.strerror or error}"
            ) from None

    def _mapping(self, value: object, what: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise KubeconfigError(f"kubeconfig {self.path}: {what} must be a mapping")
        return value

    def _string(self, mapping: Mapping[str, object], key: str, where: str) -> str:
        value = mapping.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise KubeconfigError(f"{where} in {self.path}: {key} must be a string")
        return value
