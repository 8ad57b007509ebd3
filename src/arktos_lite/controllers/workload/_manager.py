"""The workload controller manager: one partitioned instance of each configured controller.

`load_config` reads Arktos's JSON configuration:

    {"reportHealthIntervalInSecond": 10, "resyncPeriod": "12h0m0s", "qps": 20,
     "controllers": [{"type": "replicaset", "workers": 10},
                     {"type": "deployment", "workers": 5}]}

`reportHealthIntervalInSecond` is how often each instance renews its `ControllerInstance`
(an instance is dead after three intervals without one), `resyncPeriod` a Go duration
between full resyncs, `qps` the client's rate limit (applied by whoever builds the
client), `controllers` which controllers run and with how many workers. Unknown keys are
ignored, as Arktos ignores them; a malformed file raises `ConfigError`.

`WorkloadControllerManager.run` starts one `Instance` per configured controller type and
reports started once each has registered and its controller runs (ranges are handed out
from then on). Controllers are built by type from `CONTROLLERS`, an explicit registry;
a type it does not know is an error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import trio

from arktos_lite import client
from arktos_lite.controllers.workload import (
    _deployment as deployment,
    _instance as instance,
    _partition as partition,
    _replicaset as replicaset,
)

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The workload controller manager's configuration cannot be used."""


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    """A controller the manager can run: its `ControllerInstance` type and its factory."""

    controller_type: str
    factory: partition.ControllerFactory


CONTROLLERS: dict[str, Registration] = {
    "replicaset": Registration(replicaset.CONTROLLER_TYPE, replicaset.ReplicaSetController),
    "deployment": Registration(deployment.CONTROLLER_TYPE, deployment.DeploymentController),
}
"""The controllers by their configuration type (lower case)."""


def registration(type_: str) -> Registration | None:
    """The controller of configuration type `type_`; None if there is none."""
    return CONTROLLERS.get(type_.lower())


@dataclasses.dataclass(frozen=True, slots=True)
class ControllerConfig:
    type: str
    workers: int


DEFAULT_CONTROLLERS = (ControllerConfig("replicaset", 10), ControllerConfig("deployment", 5))


@dataclasses.dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """What `load_config` reads, plus the timing knobs tests shorten."""

    report_health_interval: float = 10.0
    resync_period: float = 12 * 3600.0
    qps: float = 20.0
    controllers: tuple[ControllerConfig, ...] = DEFAULT_CONTROLLERS
    expiry: float | None = None
    """Seconds without renewal after which an instance is dead; three intervals if None."""
    deregister_on_exit: bool = True
    """False: stop as if killed, leaving peers to wait for `expiry` (for tests)."""

    @property
    def timing(self) -> instance.InstanceTiming:
        return instance.InstanceTiming(
            renew_interval=self.report_health_interval,
            expiry=self.expiry if self.expiry is not None else 3 * self.report_health_interval,
            deregister_on_exit=self.deregister_on_exit,
        )


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """A Go duration (`12h0m0s`, `1.5h`, `300ms`, `0`) in seconds; raises `ConfigError`."""
    body = text.strip()
    sign = 1.0
    if body.startswith(("+", "-")):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ConfigError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            raise ConfigError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return sign * total


def parse_config(data: Mapping[str, Any]) -> WorkloadConfig:
    """The configuration from Arktos's JSON document (already decoded)."""
    if not isinstance(data, Mapping):
        raise ConfigError("the configuration must be a JSON object")
    defaults = WorkloadConfig()
    interval = data.get("reportHealthIntervalInSecond", defaults.report_health_interval)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"reportHealthIntervalInSecond must be a positive number: {interval!r}")
    resync_text = data.get("resyncPeriod")
    if resync_text is None:
        resync = defaults.resync_period
    elif isinstance(resync_text, str):
        resync = parse_duration(resync_text)
        if resync < 0:
            raise ConfigError(f"resyncPeriod may not be negative: {resync_text!r}")
    else:
        raise ConfigError(f"resyncPeriod must be a duration such as 12h0m0s: {resync_text!r}")
    qps = data.get("qps", defaults.qps)
    if isinstance(qps, bool) or not isinstance(qps, int | float) or qps <= 0:
        raise ConfigError(f"qps must be a positive number: {qps!r}")
    raw_controllers = data.get("controllers")
    controllers = defaults.controllers
    if raw_controllers is not None:
        if not isinstance(raw_controllers, list):
            raise ConfigError("controllers must be a list")
        read: list[ControllerConfig] = []
        for i, entry in enumerate(raw_controllers):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
                raise ConfigError(f"controllers[{i}] needs a type")
            workers = entry.get("workers", 1)
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise ConfigError(f"controllers[{i}].workers must be a positive integer")
            type_ = entry["type"].lower()
            if any(c.type == type_ for c in read):
                raise ConfigError(f"controller type {type_!r} is configured twice")
            read.append(ControllerConfig(type_, workers))
        controllers = tuple(read)
    return WorkloadConfig(
        report_health_interval=float(interval),
        resync_period=resync,
        qps=float(qps),
        controllers=controllers,
    )


def load_config(path: str | os.PathLike[str]) -> WorkloadConfig:
    """Read Arktos's workload controller manager configuration file."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)} is not JSON: {exc}") from exc
    return parse_config(data)


class WorkloadControllerManager:
    """Runs one partitioned instance of each configured controller. See the module docs."""

    def __init__(self, api: client.Client, *, config: WorkloadConfig | None = None) -> None:
        self._api = api
        self._config = config or WorkloadConfig()
        self.instances: list[instance.Instance] = []
        for entry in self._config.controllers:
            found = registration(entry.type)
            if found is None:
                raise ConfigError(f"unknown controller type {entry.type!r}")
            options = partition.ControllerOptions(
                workers=entry.workers, resync_period=self._config.resync_period
            )
            self.instances.append(
                instance.Instance(
                    api,
                    controller_type=found.controller_type,
                    factory=_builder(api, found.factory, options),
                    timing=self._config.timing,
                )
            )

    @property
    def config(self) -> WorkloadConfig:
        return self._config

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for member in self.instances:
                await nursery.start(member.run)
            logger.info(
                "workload controller manager started: %s",
                ", ".join(m.name for m in self.instances) or "no controllers",
            )
            task_status.started()


def _builder(
    api: client.Client, factory: partition.ControllerFactory, options: partition.ControllerOptions
) -> instance.Factory:
    def build() -> partition.PartitionedController:
        return factory(api, options=options)

    return build
