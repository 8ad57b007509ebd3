"""The persisted state of VM containers: one JSON record per VM under the runtime's root.

Records are written atomically (see `runtime._sandboxes.write_json`), so a runtime that
starts over the same root reads the previous or the new version, never half of one. The
CRI config is kept as its protobuf bytes (base64), so nothing the agent sent is lost.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from arktos_lite.runtime.cri import api_pb2 as cri


@dataclasses.dataclass(slots=True, kw_only=True)
class VmRecord:
    id: str
    sandbox_id: str
    config: cri.ContainerConfig
    created_at: int
    log_path: str
    domain: str
    uuid: str
    image_id: str
    image_ref: str
    # Files the runtime made for this VM (deleted with it): "" when there is none.
    overlay: str = ""
    seed: str = ""
    state_disk: str = ""
    # True once StartContainer ran: a defined domain that never ran is CREATED.
    started: bool = False
    started_at: int = 0
    finished_at: int = 0
    restart_count: int = 0
    # True while the last power-off was asked for (StopContainer): a destroy after the
    # ACPI timeout is then a clean stop, not a crash.
    stop_requested: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["config"] = base64.b64encode(self.config.SerializeToString()).decode()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VmRecord:
        data = dict(data)
        data["config"] = cri.ContainerConfig.FromString(base64.b64decode(data["config"]))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
