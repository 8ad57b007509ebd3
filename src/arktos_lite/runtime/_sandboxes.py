"""Pod sandboxes as the embedded runtimes (process, VM) keep them: records on disk.

Neither runtime runs a pause container: a sandbox is its CRI config, creation time and
readiness, persisted as one JSON file under the runtime's root. `Sandboxes` holds the
sandboxes of one runtime. Guarantees:

* Thread-safe: one lock of its own, never held across anything but its own records (a
  runtime may call it while holding its own lock).
* Persistent: every change is written before the call returns, atomically (`write_json`:
  a temporary file, then rename), so `load()` over the same directory reads the previous
  or the new version of each record, never half of one.
* CRI semantics: a second sandbox of the same pod and attempt is `AlreadyExists`; an empty
  id is `InvalidArgument`, an unknown one `NotFound`; stopping and forgetting are
  idempotent. Lists filter by id prefix, state and labels (every selector key equal).

The JSON helpers (`write_json`, `read_json`, `remove`) are the ones the runtimes' own
container records are written with; `refuse_second_attempt` is their shared CRI rule for
a new container (one per sandbox, name and attempt).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from arktos_lite.runtime import _errors as errors
from arktos_lite.runtime.cri import api_pb2 as cri

log = logging.getLogger(__name__)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable record %s: %s", path, e)
        return None
    return data if isinstance(data, dict) else None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def new_id() -> str:
    """A fresh sandbox or container id: 64 hex digits, as containerd's."""
    return uuid.uuid4().hex + uuid.uuid4().hex


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """Whether `labels` has every key of a CRI label selector, with its value."""
    return all(labels.get(k) == v for k, v in selector.items())


class ContainerRecord(Protocol):
    """What a runtime's container record has that `refuse_second_attempt` reads."""

    id: str
    sandbox_id: str
    config: cri.ContainerConfig


def refuse_second_attempt(
    containers: Iterable[ContainerRecord], sandbox_id: str, metadata: cri.ContainerMetadata
) -> None:
    """AlreadyExists if `containers` hold this sandbox's container of that name and attempt."""
    for other in containers:
        md = other.config.metadata
        if (
            other.sandbox_id == sandbox_id
            and md.name == metadata.name
            and md.attempt == metadata.attempt
        ):
            raise errors.AlreadyExists(
                f"container {metadata.name} attempt {metadata.attempt} exists already as {other.id}"
            )


@dataclasses.dataclass(slots=True, kw_only=True)
class SandboxRecord:
    id: str
    config: cri.PodSandboxConfig
    created_at: int
    ready: bool = True
    runtime_handler: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": base64.b64encode(self.config.SerializeToString()).decode(),
            "created_at": self.created_at,
            "ready": self.ready,
            "runtime_handler": self.runtime_handler,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxRecord:
        return cls(
            id=data["id"],
            config=cri.PodSandboxConfig.FromString(base64.b64decode(data["config"])),
            created_at=int(data["created_at"]),
            ready=bool(data["ready"]),
            runtime_handler=str(data.get("runtime_handler", "")),
        )

    @property
    def state(self) -> cri.PodSandboxState:
        return cri.SANDBOX_READY if self.ready else cri.SANDBOX_NOTREADY


class Sandboxes:
    """The sandboxes of one runtime, one record each under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._records: dict[str, SandboxRecord] = {}

    def load(self) -> None:
        """Read every record under the directory (made if missing). Blocks."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            for path in sorted(self.directory.glob("*.json")):
                data = read_json(path)
                if data is None:
                    continue
                try:
                    sb = SandboxRecord.from_json(data)
                except (KeyError, TypeError, ValueError) as e:
                    log.warning("ignoring unreadable sandbox record %s: %s", path, e)
                    continue
                self._records[sb.id] = sb

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _save(self, sb: SandboxRecord) -> None:
        write_json(self.directory / f"{sb.id}.json", sb.to_json())

    def create(self, config: cri.PodSandboxConfig, *, runtime_handler: str = "") -> SandboxRecord:
        """A new ready sandbox (its log directory made); AlreadyExists for a pod's
        second sandbox of the same attempt."""
        md = config.metadata
        if not md.name or not md.uid:
            raise errors.InvalidArgument("sandbox metadata needs a name and a uid")
        key = (md.name, md.namespace, md.uid, md.attempt, md.tenant)
        with self._lock:
            for sb in self._records.values():
                o = sb.config.metadata
                if (o.name, o.namespace, o.uid, o.attempt, o.tenant) == key:
                    raise errors.AlreadyExists(
                        f"pod sandbox {md.namespace}/{md.name} attempt {md.attempt} exists "
                        f"already as {sb.id}"
                    )
            sb = SandboxRecord(
                id=new_id(),
                config=config,
                created_at=time.time_ns(),
                runtime_handler=runtime_handler,
            )
            if config.log_directory:
                Path(config.log_directory).mkdir(parents=True, exist_ok=True)
            self._save(sb)
            self._records[sb.id] = sb
        log.debug("sandbox %s for %s/%s", sb.id, md.namespace, md.name)
        return sb

    def get(self, sandbox_id: str) -> SandboxRecord:
        if not sandbox_id:
            raise errors.InvalidArgument("a pod sandbox id is required")
        with self._lock:
            sb = self._records.get(sandbox_id)
        if sb is None:
            raise errors.NotFound(f"pod sandbox {sandbox_id!r} not found")
        return sb

    def ready(self, sandbox_id: str) -> SandboxRecord:
        """The sandbox, to create a container in: FailedPrecondition unless it is ready."""
        sb = self.get(sandbox_id)
        if not sb.ready:
            raise errors.FailedPrecondition(f"pod sandbox {sandbox_id} is not ready")
        return sb

    def find(self, sandbox_id: str) -> SandboxRecord | None:
        with self._lock:
            return self._records.get(sandbox_id)

    def mark_stopped(self, sandbox_id: str) -> None:
        """The sandbox is no longer ready (idempotent; an unknown id is ignored)."""
        with self._lock:
            sb = self._records.get(sandbox_id)
            if sb is not None and sb.ready:
                sb.ready = False
                self._save(sb)

    def forget(self, sandbox_id: str) -> None:
        """Remove the sandbox's record (idempotent)."""
        with self._lock:
            if self._records.pop(sandbox_id, None) is not None:
                remove(self.directory / f"{sandbox_id}.json")

    def status(
        self,
        sandbox_id: str,
        *,
        network: cri.PodSandboxNetworkStatus,
        linux: cri.LinuxPodSandboxStatus | None = None,
    ) -> cri.PodSandboxStatus:
        sb = self.get(sandbox_id)
        return cri.PodSandboxStatus(
            id=sb.id,
            metadata=sb.config.metadata,
            state=sb.state,
            created_at=sb.created_at,
            network=network,
            linux=linux,
            labels=sb.config.labels,
            annotations=sb.config.annotations,
            runtime_handler=sb.runtime_handler,
        )

    def list(self, filter: cri.PodSandboxFilter | None = None) -> list[cri.PodSandbox]:
        with self._lock:
            records = list(self._records.values())
        out = []
        for sb in records:
            if filter is not None:
                if filter.id and not sb.id.startswith(filter.id):
                    continue
                if filter.HasField("state") and filter.state.state != sb.state:
                    continue
                if not matches(sb.config.labels, filter.label_selector):
                    continue
            out.append(
                cri.PodSandbox(
                    id=sb.id,
                    metadata=sb.config.metadata,
                    state=sb.state,
                    created_at=sb.created_at,
                    labels=sb.config.labels,
                    annotations=sb.config.annotations,
                    runtime_handler=sb.runtime_handler,
                )
            )
        return out
