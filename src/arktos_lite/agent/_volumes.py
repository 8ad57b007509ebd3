"""A pod's volumes on the node, laid out as kubelet lays them out, and their mounts.

`prepare_volumes` makes every volume of a pod under
`<pod_dir>/volumes/<plugin>/<volume name>` (`kubernetes.io~empty-dir`,
`kubernetes.io~configmap`, `kubernetes.io~secret`, `kubernetes.io~downward-api`,
`kubernetes.io~projected`); a `hostPath` volume is the host path itself, checked (or
created) as its `type` says. ConfigMap, Secret, downward API and projected volumes are
written as kubelet's atomic writer writes them: the files live in a timestamped
`..<time>` directory, `..data` is a symlink to it and every top-level name is a symlink
through `..data`, so one `rename` swaps a whole new version in and a reader never sees a
half-written volume. Running it again updates those contents and changes nothing else.

`mounts` turns a container's `volumeMounts` into CRI mounts (`subPath`, `readOnly`;
ConfigMap, Secret, downward API and projected volumes are always read-only).
`cleanup_volumes` unmounts the memory-backed emptyDirs it made and removes the pod's
tree without following a symlink and without descending into anything else mounted there,
so the contents of a host path are never touched.

A missing ConfigMap, Secret or key that is not `optional`, a failed hostPath check and an
unsupported volume type raise `ContainerConfigError` with kubelet's message.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import trio

from arktos_lite.agent._env import (
    ContainerConfigError,
    ObjectCache,
    ObjectReader,
    config_map_binary_data,
    field_value,
    resource_value,
    secret_data,
)
from arktos_lite.api import _validation as validation
from arktos_lite.runtime.cri import api_pb2 as cri

__all__ = [
    "CONFIG_MAP_PLUGIN",
    "DOWNWARD_API_PLUGIN",
    "EMPTY_DIR_PLUGIN",
    "PROJECTED_PLUGIN",
    "SECRET_PLUGIN",
    "FileProjection",
    "cleanup_volumes",
    "mounts",
    "prepare_volumes",
    "write_payload",
]

logger = logging.getLogger(__name__)

EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"
CONFIG_MAP_PLUGIN = "kubernetes.io~configmap"
SECRET_PLUGIN = "kubernetes.io~secret"
DOWNWARD_API_PLUGIN = "kubernetes.io~downward-api"
PROJECTED_PLUGIN = "kubernetes.io~projected"
# Volumes whose contents come from the API: a container never writes to them.
_READ_ONLY_PLUGINS = frozenset(
    {CONFIG_MAP_PLUGIN, SECRET_PLUGIN, DOWNWARD_API_PLUGIN, PROJECTED_PLUGIN}
)
_DEFAULT_MODE = 0o644
_DATA_DIR = "..data"
_DATA_DIR_TMP = "..data_tmp"
_PROPAGATION = {
    "HostToContainer": cri.PROPAGATION_HOST_TO_CONTAINER,
    "Bidirectional": cri.PROPAGATION_BIDIRECTIONAL,
}
Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class FileProjection:
    """One file of an API-backed volume: its bytes and permission bits."""

    data: bytes
    mode: int = _DEFAULT_MODE


async def prepare_volumes(
    *,
    pod: Mapping[str, Any],
    pod_dir: Path,
    reader: ObjectReader,
    node_allocatable: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Make (or bring up to date) every volume of `pod`: volume name -> host path.

    Idempotent: emptyDirs keep their contents, API-backed volumes get the current
    ConfigMap, Secret and pod contents. Raises `ContainerConfigError` for a volume that
    cannot be provided.
    """
    objects = ObjectCache.for_pod(reader, pod)
    spec = pod.get("spec") or {}
    volumes_dir = pod_dir / "volumes"
    result: dict[str, Path] = {}
    for volume in spec.get("volumes") or ():
        name = str(volume.get("name") or "")
        if not name or "/" in name or name in (".", ".."):
            raise ContainerConfigError(f"invalid volume name {name!r}")
        try:
            result[name] = await _prepare_volume(
                volume,
                pod=pod,
                volumes_dir=volumes_dir,
                objects=objects,
                node_allocatable=node_allocatable,
            )
        except ContainerConfigError as e:
            raise ContainerConfigError(
                f'MountVolume.SetUp failed for volume "{name}" : {e}'
            ) from None
        except OSError as e:
            raise ContainerConfigError(
                f'MountVolume.SetUp failed for volume "{name}" : {e.strerror or e}'
            ) from e
    return result


async def _prepare_volume(
    volume: Mapping[str, Any],
    *,
    pod: Mapping[str, Any],
    volumes_dir: Path,
    objects: ObjectCache,
    node_allocatable: Mapping[str, Any] | None,
) -> Path:
    name = str(volume["name"])
    if (host_path := volume.get("hostPath")) is not None:
        path = str(host_path.get("path") or "")
        kind = str(host_path.get("type") or "")
        await trio.to_thread.run_sync(_check_host_path, path, kind)
        return Path(path)
    if (empty_dir := volume.get("emptyDir")) is not None:
        target = volumes_dir / EMPTY_DIR_PLUGIN / name
        await trio.to_thread.run_sync(
            _make_empty_dir, target, str(empty_dir.get("medium") or ""), empty_dir.get("sizeLimit")
        )
        return target
    if (source := volume.get("configMap")) is not None:
        target = volumes_dir / CONFIG_MAP_PLUGIN / name
        payload = await _config_map_payload(
            source, objects=objects, default_mode=_mode(source.get("defaultMode"))
        )
    elif (source := volume.get("secret")) is not None:
        target = volumes_dir / SECRET_PLUGIN / name
        payload = await _secret_payload(
            source,
            objects=objects,
            name=str(source.get("secretName") or ""),
            default_mode=_mode(source.get("defaultMode")),
        )
    elif (source := volume.get("downwardAPI")) is not None:
        target = volumes_dir / DOWNWARD_API_PLUGIN / name
        payload = _downward_api_payload(
            source.get("items") or (),
            pod=pod,
            default_mode=_mode(source.get("defaultMode")),
            node_allocatable=node_allocatable,
        )
    elif (source := volume.get("projected")) is not None:
        target = volumes_dir / PROJECTED_PLUGIN / name
        payload = await _projected_payload(
            source, pod=pod, objects=objects, node_allocatable=node_allocatable
        )
    elif volume.get("persistentVolumeClaim") is not None:
        raise ContainerConfigError(
            "persistentVolumeClaim volumes are not supported by this node agent "
            "(use emptyDir or hostPath)"
        )
    else:
        kinds = [kind for kind in validation.VOLUME_SOURCES if volume.get(kind) is not None]
        raise ContainerConfigError(
            f"{kinds[0]} volumes are not supported by this node agent"
            if kinds
            else "the volume has no source this node agent supports"
        )
    await trio.to_thread.run_sync(write_payload, target, payload)
    return target


def _mode(value: Any) -> int:
    # JSON carries modes as decimal integers (YAML's 0644 arrives as 420).
    return int(value) if value is not None else _DEFAULT_MODE


# --- Payloads ---------------------------------------------------------------------------


async def _config_map_payload(
    source: Mapping[str, Any], *, objects: ObjectCache, default_mode: int
) -> dict[str, FileProjection]:
    name = str(source.get("name") or "")
    optional = bool(source.get("optional"))
    config_map = await objects.config_map(name)
    if config_map is None:
        if not optional:
            raise ContainerConfigError(f'configmap "{name}" not found')
        config_map = {}
    values: dict[str, bytes] = {
        key: str(value).encode() for key, value in (config_map.get("data") or {}).items()
    }
    for key, binary in config_map_binary_data(config_map).items():
        values.setdefault(key, binary)
    return _make_payload(
        values,
        source.get("items") or (),
        default_mode=default_mode,
        optional=optional,
        missing="configmap references non-existent config key",
    )


async def _secret_payload(
    source: Mapping[str, Any], *, objects: ObjectCache, name: str, default_mode: int
) -> dict[str, FileProjection]:
    optional = bool(source.get("optional"))
    secret = await objects.secret(name)
    if secret is None:
        if not optional:
            raise ContainerConfigError(f'secret "{name}" not found')
        secret = {}
    return _make_payload(
        secret_data(secret),
        source.get("items") or (),
        default_mode=default_mode,
        optional=optional,
        missing="secret references non-existent secret key",
    )


def _make_payload(
    values: Mapping[str, bytes],
    items: Iterable[Mapping[str, Any]],
    *,
    default_mode: int,
    optional: bool,
    missing: str,
) -> dict[str, FileProjection]:
    """kubelet's `MakePayload`: every key, or just `items` (key -> path, mode)."""
    items = list(items)
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in values.items()}
    payload: dict[str, FileProjection] = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in values:
            if optional:
                continue
            raise ContainerConfigError(f"{missing}: {key}")
        mode = item.get("mode")
        payload[str(item.get("path") or key)] = FileProjection(
            values[key], _mode(mode) if mode is not None else default_mode
        )
    return payload


def _downward_api_payload(
    items: Iterable[Mapping[str, Any]],
    *,
    pod: Mapping[str, Any],
    default_mode: int,
    node_allocatable: Mapping[str, Any] | None,
) -> dict[str, FileProjection]:
    payload: dict[str, FileProjection] = {}
    for item in items:
        path = str(item.get("path") or "")
        mode = item.get("mode")
        if (field_ref := item.get("fieldRef")) is not None:
            field_path = str(field_ref.get("fieldPath") or "")
            if not field_path.startswith("metadata."):
                # Volumes are written before the pod has addresses: metadata only.
                raise ContainerConfigError(f"unsupported fieldPath: {field_path}")
            text = field_value(field_path, pod=pod, node_ip="", pod_ip="")
        elif (resource_ref := item.get("resourceFieldRef")) is not None:
            container_name = str(resource_ref.get("containerName") or "")
            container = _find_container(pod, container_name)
            text = resource_value(
                resource_ref, container=container, node_allocatable=node_allocatable
            )
        else:
            continue
        payload[path] = FileProjection(
            text.encode(), _mode(mode) if mode is not None else default_mode
        )
    return payload


def _find_container(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    for container in (*(spec.get("containers") or ()), *(spec.get("initContainers") or ())):
        if container.get("name") == name:
            return dict(container)
    raise ContainerConfigError(f'container "{name}" not found in the pod')


async def _projected_payload(
    source: Mapping[str, Any],
    *,
    pod: Mapping[str, Any],
    objects: ObjectCache,
    node_allocatable: Mapping[str, Any] | None,
) -> dict[str, FileProjection]:
    default_mode = _mode(source.get("defaultMode"))
    payload: dict[str, FileProjection] = {}
    for projection in source.get("sources") or ():
        if (config_map := projection.get("configMap")) is not None:
            payload |= await _config_map_payload(
                config_map, objects=objects, default_mode=default_mode
            )
        elif (secret := projection.get("secret")) is not None:
            payload |= await _secret_payload(
                secret,
                objects=objects,
                name=str(secret.get("name") or ""),
                default_mode=default_mode,
            )
        elif (downward := projection.get("downwardAPI")) is not None:
            payload |= _downward_api_payload(
                downward.get("items") or (),
                pod=pod,
                default_mode=default_mode,
                node_allocatable=node_allocatable,
            )
        elif projection.get("serviceAccountToken") is not None:
            raise ContainerConfigError("serviceAccountToken projections are not supported")
        elif projection.get("clusterTrustBundle") is not None:
            raise ContainerConfigError("clusterTrustBundle projections are not supported")
    return payload


# --- The atomic writer ------------------------------------------------------------------


def _validate_payload_path(path: str) -> None:
    """kubelet's atomic writer `validatePath`: relative, no `..` element, no `..` prefix."""
    if not path:
        raise ContainerConfigError("invalid path: must not be empty")
    if path.startswith("/"):
        raise ContainerConfigError(f"invalid path {path!r}: must be relative path")
    if any(part == ".." for part in path.split("/")):
        raise ContainerConfigError(f"invalid path {path!r}: must not contain '..'")
    if path.startswith(".."):
        raise ContainerConfigError(f"invalid path {path!r}: must not start with '..'")


def write_payload(target: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Make `target` hold exactly `payload`, swapping it in atomically; False if unchanged.

    Blocking: run it in a thread.
    """
    for path in payload:
        _validate_payload_path(path)
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / _DATA_DIR
    old_dir: Path | None = None
    if data_link.is_symlink():
        old_name = os.readlink(data_link)
        if "/" not in old_name and old_name.startswith(".."):
            old_dir = target / old_name
        if old_dir is not None and _holds(old_dir, payload):
            _link_top_level(target, payload)
            return False
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    new_dir.chmod(0o755)
    for path, projection in payload.items():
        file = new_dir / path
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, projection.data)
            os.fchmod(fd, projection.mode & 0o7777)
        finally:
            os.close(fd)
    tmp_link = target / _DATA_DIR_TMP
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(new_dir.name, tmp_link)
    # The one atomic step: readers see the old version or the new one, never a mix.
    os.replace(tmp_link, data_link)
    _link_top_level(target, payload)
    if old_dir is not None and old_dir.is_dir() and not old_dir.is_symlink():
        shutil.rmtree(old_dir)
    return True


def _link_top_level(target: Path, payload: Mapping[str, FileProjection]) -> None:
    wanted = {path.split("/")[0] for path in payload}
    for entry in os.scandir(target):
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted and entry.is_symlink():
            os.unlink(entry.path)
    for name in wanted:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{_DATA_DIR}/{name}", link)


def _holds(directory: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Whether `directory` holds exactly `payload` (contents and modes)."""
    found: dict[str, FileProjection] = {}
    for root, _dirs, files in os.walk(directory):
        for file in files:
            path = Path(root) / file
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                return False
            found[str(path.relative_to(directory))] = FileProjection(
                path.read_bytes(), stat.S_IMODE(info.st_mode)
            )
    wanted = {path: FileProjection(p.data, p.mode & 0o7777) for path, p in payload.items()}
    return found == wanted


# --- emptyDir and hostPath --------------------------------------------------------------


def _make_empty_dir(target: Path, medium: str, size_limit: Any) -> None:
    if os.path.lexists(target):
        # Made before: a memory-backed one is mounted already, or it fell back to a
        # directory once, and its contents must stay either way.
        return
    target.mkdir(parents=True)
    target.chmod(0o777)
    if medium != "Memory":
        return
    if os.geteuid() != 0:
        logger.info("emptyDir %s: not memory-backed (mounting tmpfs needs root)", target)
        return
    options = "mode=0777"
    if size_limit is not None:
        try:
            size = validation.Quantity.from_json(size_limit).value
        except (validation.QuantityError, TypeError):
            size = None
        if size is not None and size > 0:
            options += f",size={int(size.to_integral_value(rounding=decimal.ROUND_CEILING))}"
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as e:
        # Without mount privileges the volume is an ordinary directory: it still works.
        logger.warning("emptyDir %s: tmpfs mount failed, using a directory: %s", target, e)


def _check_host_path(path: str, kind: str) -> None:
    """kubelet's hostPath `checkType`, with its messages."""
    if not path.startswith("/"):
        raise ContainerConfigError(f"hostPath {path!r} is not an absolute path")
    match kind:
        case "":
            return
        case "DirectoryOrCreate":
            if not os.path.lexists(path):
                os.makedirs(path, mode=0o755, exist_ok=True)
                return
            if not os.path.isdir(path):
                raise ContainerConfigError(f"hostPath type check failed: {path} is not a directory")
        case "Directory":
            if not os.path.isdir(path):
                raise ContainerConfigError(f"hostPath type check failed: {path} is not a directory")
        case "FileOrCreate":
            if not os.path.lexists(path):
                # Like kubelet: the file is made, its directory must exist already.
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
                os.close(fd)
                return
            if not os.path.isfile(path):
                raise ContainerConfigError(f"hostPath type check failed: {path} is not a file")
        case "File":
            if not os.path.isfile(path):
                raise ContainerConfigError(f"hostPath type check failed: {path} is not a file")
        case "Socket":
            if not _is(path, stat.S_ISSOCK):
                raise ContainerConfigError(
                    f"hostPath type check failed: {path} is not a socket file"
                )
        case "CharDevice":
            if not _is(path, stat.S_ISCHR):
                raise ContainerConfigError(
                    f"hostPath type check failed: {path} is not a character device"
                )
        case "BlockDevice":
            if not _is(path, stat.S_ISBLK):
                raise ContainerConfigError(
                    f"hostPath type check failed: {path} is not a block device"
                )
        case _:
            raise ContainerConfigError(f"{kind} is an invalid volume type")


def _is(path: str, test: Any) -> bool:
    try:
        return bool(test(os.stat(path).st_mode))
    except OSError:
        return False


# --- Mounts -----------------------------------------------------------------------------


def mounts(container: Mapping[str, Any], volumes: Mapping[str, Path]) -> list[cri.Mount]:
    """The CRI mounts of `container`'s `volumeMounts` over the prepared `volumes`.

    A `subPath` must stay inside its volume; a missing one is made as a directory, as
    kubelet does. Raises `ContainerConfigError` for an unknown volume or a bad subPath.
    """
    container_name = container.get("name") or ""
    result: list[cri.Mount] = []
    for volume_mount in container.get("volumeMounts") or ():
        name = str(volume_mount.get("name") or "")
        if name not in volumes:
            raise ContainerConfigError(
                f'cannot find volume "{name}" to mount into container "{container_name}"'
            )
        host_path = volumes[name]
        read_only = bool(volume_mount.get("readOnly")) or host_path.parent.name in (
            _READ_ONLY_PLUGINS
        )
        if volume_mount.get("subPathExpr"):
            raise ContainerConfigError("subPathExpr is not supported by this node agent")
        if sub_path := str(volume_mount.get("subPath") or ""):
            host_path = _sub_path(host_path, sub_path, name=name, container_name=container_name)
        result.append(
            cri.Mount(
                container_path=str(volume_mount.get("mountPath") or ""),
                host_path=str(host_path),
                readonly=read_only,
                propagation=_PROPAGATION.get(
                    str(volume_mount.get("mountPropagation") or ""), cri.PROPAGATION_PRIVATE
                ),
            )
        )
    return result


def _sub_path(volume_path: Path, sub_path: str, *, name: str, container_name: str) -> Path:
    if sub_path.startswith("/"):
        raise ContainerConfigError(f"error SubPath `{sub_path}` must not be an absolute path")
    if any(part == ".." for part in sub_path.split("/")):
        raise ContainerConfigError(
            f"unable to provision SubPath `{sub_path}`: must not contain '..'"
        )
    base = volume_path.resolve()
    path = volume_path / sub_path
    if not os.path.lexists(path):
        try:
            mode = stat.S_IMODE(base.stat().st_mode)
            current = base
            for part in Path(sub_path).parts:
                current = current / part
                if not os.path.lexists(current):
                    current.mkdir(mode=mode)
                # A symlink planted by a container must not lead the new directory out.
                if not current.resolve().is_relative_to(base):
                    raise ContainerConfigError(
                        f"subPath `{sub_path}` of volume {name!r} leaves the volume"
                    )
        except OSError as e:
            logger.debug("making subPath %s in %s: %s", sub_path, volume_path, e)
            raise ContainerConfigError(
                f'failed to create subPath directory for volumeMount "{name}" '
                f'of container "{container_name}"'
            ) from None
    resolved = path.resolve()
    if not resolved.is_relative_to(base):
        raise ContainerConfigError(f"subPath `{sub_path}` of volume {name!r} leaves the volume")
    return resolved


# --- Cleanup ----------------------------------------------------------------------------


async def cleanup_volumes(pod_dir: Path) -> None:
    """Unmount the pod's memory-backed emptyDirs and remove `pod_dir`.

    Never follows a symlink and never descends into a mount it did not make (such as a
    bind-mounted host path): those are left in place with a warning.
    """
    await trio.to_thread.run_sync(_cleanup, pod_dir)


def _cleanup(pod_dir: Path) -> None:
    if not os.path.lexists(pod_dir):
        return
    if pod_dir.is_symlink() or not pod_dir.is_dir():
        pod_dir.unlink()
        return
    root = os.path.realpath(pod_dir)
    mounted = _mount_points_under(root)
    for point, fstype in sorted(mounted.items(), key=lambda m: len(m[0]), reverse=True):
        if fstype != "tmpfs" or f"/{EMPTY_DIR_PLUGIN}/" not in point:
            continue
        try:
            subprocess.run(["umount", point], check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            logger.warning("unmounting %s: %s", point, e)
    still_mounted = set(_mount_points_under(root))
    if not _remove_tree(root, os.lstat(root).st_dev, still_mounted):
        logger.warning("left %s in place: something is still mounted under it", pod_dir)


def _remove_tree(path: str, device: int, mount_points: set[str]) -> bool:
    """Remove `path` without following symlinks or crossing mounts; True if it is gone."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return True
    if info.st_dev != device or path in mount_points:
        logger.warning("not removing %s: it is a mount point", path)
        return False
    complete = True
    with os.scandir(path) as entries:
        children = [entry.path for entry in entries]
    for child in children:
        complete = _remove_tree(child, device, mount_points) and complete
    if complete:
        os.rmdir(path)
    return complete


def _mount_points_under(root: str) -> dict[str, str]:
    """Mount point -> filesystem type, for every mount at or below `root`."""
    found: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.readlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 7 or "-" not in fields:
            continue
        point = _unescape_mountinfo(fields[4])
        fstype = fields[fields.index("-") + 1]
        if point == root or point.startswith(root.rstrip("/") + "/"):
            found[point] = fstype
    return found


def _unescape_mountinfo(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 4 <= len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
