"""`arktos logs`: a pod's log through the API server, for container pods and VM pods alike.

Stock `kubectl logs` refuses a pod without `spec.containers`, so it cannot show a VM pod's
serial console; this command asks `GET …/pods/{name}/log` directly and lets the API server
pick the container (a VM pod's one container is its VM). Guarantees:

* The query carries exactly the options given (`container`, `follow`, `tailLines`,
  `sinceSeconds` or `sinceTime`, `timestamps`, `previous`), as kubectl sends them.
* Without `follow` the whole answer is read (retried like every client request) and
  written out; with it, bytes are written as they arrive until the server ends the stream
  (the container or VM stopped) or the caller is cancelled.
* Errors come back as the server's `api.errors.StatusError` or `client.Unreachable`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from arktos_lite import client
from arktos_lite.api import resources

_FOUND_PODS = resources.Registry().get("", "v1", "pods")
assert _FOUND_PODS is not None
PODS: resources.Resource = _FOUND_PODS

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> int:
    """Go's duration (`90s`, `5m`, `1h30m`) as whole seconds, at least 1, as kubectl sends
    `--since`; `ValueError` for anything else."""
    text = text.strip()
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"invalid duration {text!r} (e.g. 30s, 5m, 1h)")
    return max(1, int(total + 0.999))


@dataclasses.dataclass(frozen=True, slots=True)
class LogOptions:
    container: str | None = None
    follow: bool = False
    tail: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None
    timestamps: bool = False
    previous: bool = False

    def params(self) -> dict[str, str]:
        """The query of `pods/{name}/log`, only what was asked for."""
        query: dict[str, str] = {}
        if self.container:
            query["container"] = self.container
        if self.follow:
            query["follow"] = "true"
        if self.tail is not None and self.tail >= 0:
            query["tailLines"] = str(self.tail)
        if self.since_seconds is not None:
            query["sinceSeconds"] = str(self.since_seconds)
        if self.since_time is not None:
            query["sinceTime"] = self.since_time
        if self.timestamps:
            query["timestamps"] = "true"
        if self.previous:
            query["previous"] = "true"
        return query


async def write_log(
    api: client.Client,
    pod: str,
    *,
    namespace: str,
    tenant: str | None,
    options: LogOptions,
    out: Callable[[bytes], object],
) -> None:
    """Write the pod's log to `out`, chunk by chunk (see the module docs)."""
    path = api.path_of(PODS, tenant=tenant, namespace=namespace, name=pod, subresource="log")
    params = options.params()
    if not options.follow:
        text: Any = await api.request("GET", path, params=params)
        if text:
            out(text.encode() if isinstance(text, str) else bytes(text))
        return
    async with api.stream("GET", path, params=params) as chunks:
        async for chunk in chunks:
            out(chunk)
