"""CNI: the config a network's bridge is attached with, and running the plugins.

`bridge_config` is the network configuration (bridge + host-local, CNI 1.0.0, as the
Debian plugins 1.1 speak it) of one network's bridge, `ipam_config` its host-local alone
(addresses for VM guests, whose NICs the VM runtime plugs in); `invoke` runs one plugin
binary the way a CNI runtime does (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
`CNI_IFNAME`, `CNI_PATH`, the config on stdin) and returns its result or raises
`CNIError` with the plugin's own message.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arktos_lite.network import _model as model

CNI_VERSION = "1.0.0"
DEFAULT_CNI_PATH = ("/usr/lib/cni", "/opt/cni/bin")
PLUGINS = ("bridge", "host-local")
_TIMEOUT = 30.0


class CNIError(RuntimeError):
    """A plugin failed; the message is the plugin's."""


def bridge_config(bridge: model.Bridge, *, ipam_dir: Path) -> dict[str, Any]:
    """The CNI network config that attaches pods to `bridge` with an address of its subnet."""
    return {
        "cniVersion": CNI_VERSION,
        "name": bridge.name,
        "type": "bridge",
        "bridge": bridge.name,
        "isGateway": True,
        # Masquerading is the node's nftables table's (the plugin's needs iptables).
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": _ipam(bridge, ipam_dir),
    }


def ipam_config(bridge: model.Bridge, *, ipam_dir: Path) -> dict[str, Any]:
    """The network config that runs host-local alone for `bridge`: the same name, ranges
    and data directory as `bridge_config`'s IPAM, so both draw from one pool."""
    return {
        "cniVersion": CNI_VERSION,
        "name": bridge.name,
        "type": "host-local",
        "ipam": _ipam(bridge, ipam_dir),
    }


def _ipam(bridge: model.Bridge, ipam_dir: Path) -> dict[str, Any]:
    return {
        "type": "host-local",
        "ranges": [[{"subnet": bridge.subnet, "gateway": bridge.gateway}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(ipam_dir),
    }


def find_plugins(search: tuple[str, ...] = DEFAULT_CNI_PATH) -> str | None:
    """The first directory holding every plugin used here, or None."""
    for directory in search:
        if all(os.access(os.path.join(directory, p), os.X_OK) for p in PLUGINS):
            return directory
    return None


def invoke(
    command: str,
    config: Mapping[str, Any],
    *,
    cni_path: str,
    container_id: str,
    netns: str,
    ifname: str = model.IFNAME,
    args: str = "",
) -> dict[str, Any]:
    """Run the config's plugin with `command` (ADD, DEL, CHECK); ADD's result, else {}."""
    plugin = os.path.join(cni_path, str(config["type"]))
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": cni_path,
    }
    if args:
        env["CNI_ARGS"] = args
    try:
        done = subprocess.run(
            [plugin],
            input=json.dumps(config).encode(),
            env=env,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CNIError(f"{config['type']} {command}: {e}") from e
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        raise CNIError(f"{config['type']} {command}: {_error_message(out, done.stderr)}")
    if command != "ADD":
        return {}
    try:
        result = json.loads(out)
    except ValueError as e:
        raise CNIError(f"{config['type']} {command}: unreadable result {out[:200]!r}") from e
    if not isinstance(result, dict):
        raise CNIError(f"{config['type']} {command}: unreadable result {out[:200]!r}")
    return result


def _error_message(out: str, stderr: bytes) -> str:
    try:
        error = json.loads(out)
    except ValueError:
        error = None
    if isinstance(error, dict) and error.get("msg"):
        details = f": {error['details']}" if error.get("details") else ""
        return f"{error['msg']}{details} (code {error.get('code', '?')})"
    return (out or stderr.decode(errors="replace")).strip()[:500] or "failed"


def result_ips(result: Mapping[str, Any]) -> tuple[str, ...]:
    """The addresses (without prefix length) an ADD result gives the pod."""
    return tuple(
        str(ip["address"]).split("/")[0] for ip in result.get("ips") or () if "address" in ip
    )
