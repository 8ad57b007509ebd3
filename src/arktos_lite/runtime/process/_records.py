"""The persisted state of sandboxes and containers: JSON files under the runtime's root.

Each record is written atomically (a temporary file, then rename), so a runtime that
starts over the same root directory reads either the previous or the new version of every
record, never half of one. The CRI configs are stored as their protobuf bytes (base64),
so nothing of what the agent sent is lost.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import json
import logging
import os
from pathlib import Path
from typing import Any

from arktos_lite.runtime.cri import api_pb2 as cri

log = logging.getLogger(__name__)


class State(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


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


@dataclasses.dataclass(slots=True, kw_only=True)
class ContainerRecord:
    id: str
    sandbox_id: str
    config: cri.ContainerConfig
    created_at: int
    log_path: str
    argv: list[str]
    env: dict[str, str]
    workdir: str
    hostname: str
    state: State = State.CREATED
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    pid: int = 0
    pid_start: int = 0
    isolated: bool = False
    cgroup: bool = False
    # True once the runtime sent SIGKILL: a wrapper killed that way leaves no exit file.
    killed: bool = False
    # Run by runc from a stored image (`_runc`): the image's id and how its rootfs was
    # made ("overlay" or "copy"); argv, env and workdir are then the container's view.
    runc: bool = False
    image_id: str = ""
    rootfs: str = ""
    # What could not be honoured (mounts without isolation, limits without cgroups).
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["config"] = base64.b64encode(self.config.SerializeToString()).decode()
        data["state"] = self.state.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerRecord:
        data = dict(data)
        data["config"] = cri.ContainerConfig.FromString(base64.b64decode(data["config"]))
        data["state"] = State(data["state"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
