"""The process runtime package's public names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from arktos_lite.runtime import process


def test_public_names() -> None:
    public = {n for n in vars(process) if not n.startswith("_")}
    assert {"ProcessRuntime", "ProcessRuntimeConfig", "ExecSpec", "Supervisor"} <= public


def test_config_defaults() -> None:
    config = process.ProcessRuntimeConfig(root_dir=Path("/r"), socket_path=Path("/r/s.sock"))
    assert config.streaming_host == "127.0.0.1"
    assert config.streaming_port == 0
    assert config.log_max_bytes == 10 * 1024 * 1024
    assert config.log_max_files == 5
    assert config.isolate is None
    assert config.host_ip == "127.0.0.1"
    assert dataclasses.is_dataclass(config)
