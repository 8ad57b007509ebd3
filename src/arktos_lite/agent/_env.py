"""A container's environment as kubelet builds it, and `$(VAR)` expansion.

`container_env` follows kubelet's `makeEnvironmentVariables`: every `envFrom` source first
(with its prefix; keys that are not valid variable names are skipped), then every `env`
entry in order, a later entry replacing an earlier one of the same name. A `value` expands
`$(VAR)` against the variables defined before it; `valueFrom` reads a ConfigMap or Secret
key, a pod field or a container resource. A missing ConfigMap, Secret or key that is not
`optional` raises `ContainerConfigError` carrying the message kubelet shows, which the pod
worker reports as the waiting reason `CreateContainerConfigError`.

Each ConfigMap and Secret is read once per call through an `ObjectReader`, so one pod
start costs at most one read per object. Service environment variables are not set.

`vm_public_key` resolves a VM pod's `spec.virtualMachine.keyPairName` the same way: the
Secret of that name in the pod's tenant and namespace holds the public key under
`publicKey` (or `ssh-publickey`, as `kubernetes.io/ssh-auth` Secrets name it); a missing
Secret or key is a `ContainerConfigError` saying which.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import logging
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from arktos_lite.api import _validation as validation, resources

__all__ = [
    "ContainerConfigError",
    "ObjectReader",
    "ObjectCache",
    "config_map_binary_data",
    "container_env",
    "expand",
    "field_value",
    "is_env_var_name",
    "resource_value",
    "secret_data",
    "vm_public_key",
]

logger = logging.getLogger(__name__)


def _core_resource(plural: str) -> resources.Resource:
    resource = resources.Registry().get("", "v1", plural)
    if resource is None:
        raise LookupError(f"{plural} is not a built-in resource")
    return resource


CONFIGMAPS = _core_resource("configmaps")
SECRETS = _core_resource("secrets")

Obj = dict[str, Any]

_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_SUBSCRIPTED = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


class ContainerConfigError(Exception):
    """The container cannot be configured; `str()` is kubelet's message for it."""


class ObjectReader(Protocol):
    """Reads one object of the pod's tenant and namespace (ConfigMaps and Secrets)."""

    async def get(
        self, resource: resources.Resource, name: str, *, tenant: str, namespace: str
    ) -> dict[str, Any] | None:
        """The object, or None when there is no such object."""
        ...


class ObjectCache:
    """The ConfigMaps and Secrets one pod reads, each read once (absent ones included)."""

    def __init__(self, reader: ObjectReader, *, tenant: str, namespace: str) -> None:
        self._reader = reader
        self._tenant = tenant
        self._namespace = namespace
        self._objects: dict[tuple[str, str], Obj | None] = {}

    @classmethod
    def for_pod(cls, reader: ObjectReader, pod: Mapping[str, Any]) -> ObjectCache:
        metadata = pod.get("metadata") or {}
        return cls(
            reader,
            tenant=metadata.get("tenant") or resources.SYSTEM_TENANT,
            namespace=metadata.get("namespace") or "default",
        )

    @property
    def namespace(self) -> str:
        return self._namespace

    async def config_map(self, name: str) -> Obj | None:
        return await self._get(CONFIGMAPS, name)

    async def secret(self, name: str) -> Obj | None:
        return await self._get(SECRETS, name)

    async def _get(self, resource: resources.Resource, name: str) -> Obj | None:
        key = (resource.plural, name)
        if key not in self._objects:
            self._objects[key] = await self._reader.get(
                resource, name, tenant=self._tenant, namespace=self._namespace
            )
        return self._objects[key]


def is_env_var_name(name: str) -> bool:
    """apimachinery's `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`, not `.`, `..`, `..x`."""
    return _ENV_VAR_NAME.fullmatch(name) is not None and not name.startswith("..") and name != "."


def secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's `data`, base64-decoded (a value that is not base64 is taken as is)."""
    decoded: dict[str, bytes] = {}
    for key, value in (secret.get("data") or {}).items():
        text = str(value)
        try:
            decoded[key] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded[key] = text.encode()
    return decoded


KEY_PAIR_KEYS = ("publicKey", "ssh-publickey")


async def vm_public_key(*, pod: Mapping[str, Any], reader: ObjectReader) -> str | None:
    """The public key of a VM pod's `keyPairName`; None when its VM names no key pair
    or carries a `publicKey` of its own (which wins)."""
    vm = (pod.get("spec") or {}).get("virtualMachine") or {}
    name = str(vm.get("keyPairName") or "")
    if not name or str(vm.get("publicKey") or "").strip():
        return None
    objects = ObjectCache.for_pod(reader, pod)
    secret = await objects.secret(name)
    if secret is None:
        raise ContainerConfigError(
            f'key pair "{name}" not found: no secret "{name}" in namespace {objects.namespace}'
        )
    data = secret_data(secret)
    for key in KEY_PAIR_KEYS:
        value = data.get(key, b"").decode(errors="replace").strip()
        if value:
            return value
    raise ContainerConfigError(
        f'key pair "{name}": secret "{name}" in namespace {objects.namespace} has no '
        f"{' or '.join(KEY_PAIR_KEYS)} key"
    )


def config_map_binary_data(config_map: Mapping[str, Any]) -> dict[str, bytes]:
    decoded: dict[str, bytes] = {}
    for key, value in (config_map.get("binaryData") or {}).items():
        try:
            decoded[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            decoded[key] = str(value).encode()
    return decoded


async def container_env(
    *,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    reader: ObjectReader,
    node_ip: str,
    pod_ip: str,
    node_allocatable: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """The container's environment, in kubelet's order, as (name, value) pairs.

    `node_allocatable` (`cpu`, `memory`, `ephemeral-storage` quantities) stands in for
    limits the container does not set, as kubelet does for `resourceFieldRef`; without it
    an unset limit reads as the request, or 0.
    """
    objects = ObjectCache.for_pod(reader, pod)
    namespace = objects.namespace
    env: dict[str, str] = {}

    for source in container.get("envFrom") or ():
        prefix = source.get("prefix") or ""
        if (ref := source.get("configMapRef")) is not None:
            name = ref.get("name") or ""
            config_map = await objects.config_map(name)
            if config_map is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'configmap "{name}" not found')
            values = {k: str(v) for k, v in (config_map.get("data") or {}).items()}
        elif (ref := source.get("secretRef")) is not None:
            name = ref.get("name") or ""
            secret = await objects.secret(name)
            if secret is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'secret "{name}" not found')
            values = {k: v.decode(errors="replace") for k, v in secret_data(secret).items()}
        else:
            continue
        invalid = []
        for key, value in values.items():
            name = prefix + key
            if not is_env_var_name(name):
                invalid.append(name)
                continue
            env[name] = value
        if invalid:
            logger.debug("skipped invalid environment variable names %s", sorted(invalid))

    for entry in container.get("env") or ():
        name = entry.get("name") or ""
        value = entry.get("value") or ""
        value_from = entry.get("valueFrom")
        if value:
            value = _expand_one(value, env)
        elif value_from:
            resolved = await _value_from(
                value_from,
                pod=pod,
                container=container,
                objects=objects,
                namespace=namespace,
                node_ip=node_ip,
                pod_ip=pod_ip,
                node_allocatable=node_allocatable,
            )
            if resolved is None:
                continue
            value = resolved
        # The environment reads in declaration order: a redefinition moves to its place.
        env.pop(name, None)
        env[name] = value
    return list(env.items())


async def _value_from(
    value_from: Mapping[str, Any],
    *,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    objects: ObjectCache,
    namespace: str,
    node_ip: str,
    pod_ip: str,
    node_allocatable: Mapping[str, Any] | None,
) -> str | None:
    """One `valueFrom`; None when an optional source is absent (the variable is not set)."""
    if (field_ref := value_from.get("fieldRef")) is not None:
        return field_value(
            field_ref.get("fieldPath") or "", pod=pod, node_ip=node_ip, pod_ip=pod_ip
        )
    if (resource_ref := value_from.get("resourceFieldRef")) is not None:
        return resource_value(resource_ref, container=container, node_allocatable=node_allocatable)
    if (ref := value_from.get("configMapKeyRef")) is not None:
        name, key, optional = ref.get("name") or "", ref.get("key") or "", bool(ref.get("optional"))
        config_map = await objects.config_map(name)
        if config_map is None:
            if optional:
                return None
            raise ContainerConfigError(f'configmap "{name}" not found')
        data = config_map.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in ConfigMap {namespace}/{name}")
        return str(data[key])
    if (ref := value_from.get("secretKeyRef")) is not None:
        name, key, optional = ref.get("name") or "", ref.get("key") or "", bool(ref.get("optional"))
        secret = await objects.secret(name)
        if secret is None:
            if optional:
                return None
            raise ContainerConfigError(f'secret "{name}" not found')
        data = secret_data(secret)
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in Secret {namespace}/{name}")
        return data[key].decode(errors="replace")
    return ""


def field_value(field_path: str, *, pod: Mapping[str, Any], node_ip: str, pod_ip: str) -> str:
    """A downward API `fieldRef` of the pod, as kubelet renders it.

    Raises `ContainerConfigError` for a field path the downward API does not offer.
    """
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if (match := _SUBSCRIPTED.match(field_path)) is not None:
        which = metadata.get(match[1].removeprefix("metadata.")) or {}
        return str(which.get(match[2], ""))
    match field_path:
        case "metadata.name":
            return str(metadata.get("name") or "")
        case "metadata.namespace":
            return str(metadata.get("namespace") or "")
        case "metadata.uid":
            return str(metadata.get("uid") or "")
        case "metadata.tenant":
            return str(metadata.get("tenant") or resources.SYSTEM_TENANT)
        case "metadata.labels" | "metadata.annotations":
            return _format_map(metadata.get(field_path.removeprefix("metadata.")) or {})
        case "spec.nodeName":
            return str(spec.get("nodeName") or "")
        case "spec.serviceAccountName":
            return str(spec.get("serviceAccountName") or "")
        case "status.hostIP":
            return node_ip
        case "status.hostIPs":
            return node_ip
        case "status.podIP":
            return pod_ip
        case "status.podIPs":
            return ",".join(_pod_ips(status, pod_ip))
    raise ContainerConfigError(f"unsupported fieldPath: {field_path}")


def _pod_ips(status: Mapping[str, Any], pod_ip: str) -> list[str]:
    ips = [pod_ip] if pod_ip else []
    for entry in status.get("podIPs") or ():
        ip = entry.get("ip") if isinstance(entry, Mapping) else None
        if ip and ip not in ips:
            ips.append(str(ip))
    return ips


def _format_map(values: Mapping[str, Any]) -> str:
    """apimachinery's `FormatMap`: sorted `key="value"` lines, values quoted as Go's %q."""
    return "\n".join(f"{key}={_go_quote(str(values[key]))}" for key in sorted(values))


def _go_quote(text: str) -> str:
    escapes = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
    escapes |= {"\v": r"\v", "\\": r"\\", '"': r"\""}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            code = ord(char)
            out.append(
                f"\\x{code:02x}"
                if code < 0x80
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


_RESOURCE_FIELDS = {
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
    "limits.ephemeral-storage": ("limits", "ephemeral-storage"),
    "requests.cpu": ("requests", "cpu"),
    "requests.memory": ("requests", "memory"),
    "requests.ephemeral-storage": ("requests", "ephemeral-storage"),
}


def resource_value(
    resource_ref: Mapping[str, Any],
    *,
    container: Mapping[str, Any],
    node_allocatable: Mapping[str, Any] | None = None,
) -> str:
    """A downward API `resourceFieldRef` of `container`, as kubelet renders it.

    CPU is rounded up to whole units of the divisor (default 1 core), memory and storage
    to whole units of the divisor (default 1 byte). An unset limit is the node's
    allocatable amount when known, else the request (else 0); an unset request is the
    limit, as API defaulting would have set it.
    """
    field = resource_ref.get("resource") or ""
    if field not in _RESOURCE_FIELDS:
        raise ContainerConfigError(f"unsupported container resource : {field}")
    kind, name = _RESOURCE_FIELDS[field]
    resources_spec = container.get("resources") or {}
    limits = resources_spec.get("limits") or {}
    requests = resources_spec.get("requests") or {}
    text: Any
    if kind == "limits":
        text = limits.get(name)
        if text is None and node_allocatable is not None:
            text = node_allocatable.get(name)
        if text is None:
            text = requests.get(name)
    else:
        text = requests.get(name)
        if text is None:
            text = limits.get(name)
    try:
        amount = _quantity(text) if text is not None else Decimal(0)
        divisor = _quantity(resource_ref.get("divisor") or 0)
    except (validation.QuantityError, TypeError) as e:
        raise ContainerConfigError(f"invalid quantity for {field}: {e}") from None
    if not divisor:
        divisor = Decimal(1)
    if name == "cpu":
        # kubelet divides milli-values, each rounded up to a whole milli-unit.
        milli = _ceil(amount * 1000)
        divisor_milli = _ceil(divisor * 1000)
        return str(_ceil(Decimal(milli) / Decimal(divisor_milli)))
    return str(_ceil(Decimal(_ceil(amount)) / Decimal(_ceil(divisor))))


def _quantity(value: Any) -> Decimal:
    return validation.Quantity.from_json(value).value


def _ceil(value: Decimal) -> int:
    with decimal.localcontext() as context:
        context.prec = 60
        return int(value.to_integral_value(rounding=decimal.ROUND_CEILING))


def expand(values: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Kubernetes' `$(VAR)` expansion of command and args against the container's env.

    `$$` is a literal `$`; a reference to an unknown variable (or an unclosed `$(`) stays
    as written.
    """
    return [_expand_one(value, env) for value in values]


def _expand_one(text: str, env: Mapping[str, str]) -> str:
    """The forked `third_party/forked/golang/expansion.Expand`, character for character."""
    if "$" not in text:
        return text
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    end = len(text)
    while cursor < end:
        if text[cursor] == "$" and cursor + 1 < end:
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            if following == "$":
                out.append("$")
                cursor += 1
            elif following == "(":
                closer = text.find(")", cursor + 2)
                if closer < 0:
                    out.append("$(")
                    cursor += 1
                else:
                    name = text[cursor + 2 : closer]
                    out.append(env.get(name, f"$({name})"))
                    cursor = closer
            else:
                out.append("$" + following)
                cursor += 1
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)
