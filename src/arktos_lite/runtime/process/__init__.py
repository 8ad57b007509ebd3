"""The embedded process runtime: CRI over a unix socket, containers as host processes."""

from __future__ import annotations

from arktos_lite.runtime.process._config import ProcessRuntimeConfig as ProcessRuntimeConfig
from arktos_lite.runtime.process._runtime import ProcessRuntime as ProcessRuntime
from arktos_lite.runtime.process._store import (
    ImportedImage as ImportedImage,
    import_image as import_image,
)
from arktos_lite.runtime.process._supervisor import (
    ExecSpec as ExecSpec,
    Supervisor as Supervisor,
)
