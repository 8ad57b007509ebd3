"""How the embedded process runtime is set up: where it keeps state and how it isolates.

The config is a frozen value; `ProcessRuntime` reads it once. `isolate=None` means "decide
from the machine": namespaces are used when running as root with `unshare` installed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessRuntimeConfig:
    """Settings of one process runtime.

    `root_dir` holds the sandbox and container records, the containers' raw output and exit
    files; a new runtime over the same `root_dir` adopts what the previous one left running.
    """

    root_dir: Path
    socket_path: Path
    _: dataclasses.KW_ONLY
    streaming_host: str = "127.0.0.1"
    streaming_port: int = 0
    log_max_bytes: int = 10 * MIB
    log_max_files: int = 5
    # None: namespaces and cgroups when root and `unshare` exist; False: never; True: demand
    # them (still degrades with a message when the machine cannot).
    isolate: bool | None = None
    # None: containers whose image is in the store (`arktos image import`) run with runc
    # when isolated and `runc` is on PATH; False: never (they run as host processes).
    runc: bool | None = None
    # Containers share the host's network: the sandbox IP is the node's.
    host_ip: str = "127.0.0.1"
    # Parent of the per-container cgroups, relative to this process's own cgroup in each
    # v1 hierarchy, so the containers stay inside whatever limits the runtime runs under.
    cgroup_name: str = "arktos"
