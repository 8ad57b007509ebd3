"""The persisted state of containers: JSON files under the runtime's root.

Each record is written atomically (`runtime._sandboxes.write_json`: a temporary file,
then rename), so a runtime that starts over the same root directory reads either the
previous or the new version of every record, never half of one. The CRI configs are
stored as their protobuf bytes (base64), so nothing of what the agent sent is lost.
Sandboxes are `runtime._sandboxes`' records, shared with the VM runtime.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from typing import Any

from arktos_lite.runtime._sandboxes import (
    SandboxRecord as SandboxRecord,
    read_json as read_json,
    remove as remove,
    write_json as write_json,
)
from arktos_lite.runtime.cri import api_pb2 as cri


class State(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


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
    # The pod's network namespace (a path) the container runs in; "" for the node's.
    netns: str = ""
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
