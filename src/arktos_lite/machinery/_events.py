"""Recording core/v1 Events about objects, as `kubectl describe` shows them.

Guarantees:

* `EventRecorder.event` never raises and never waits: it puts the event on a bounded
  buffer and returns; when the buffer is full the event is dropped (logged at DEBUG).
  The recorder's `run` task writes the buffer out in order.
* An event lands in the involved object's tenant and namespace; events about a
  tenant-scoped object go to its tenant's `default` namespace, those about a
  cluster-scoped object to `default` of the `system` tenant.
* Like client-go's correlator, a repeat of the same event (same object, type, reason and
  message) within 10 minutes of the previous one patches the existing Event's `count`
  and `lastTimestamp` instead of writing a new Event. The memory of past events is a
  bounded LRU cache.
* A failed write is logged and dropped; it never stops the recorder.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import trio

from arktos_lite import client
from arktos_lite.api import errors, resources, timestamps

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

BUFFER_SIZE = 1000
CACHE_SIZE = 4096
CORRELATION_WINDOW = 600.0

EVENTS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Event"))


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclasses.dataclass(frozen=True, slots=True)
class _Pending:
    involved: Mapping[str, str]
    tenant: str
    namespace: str
    type: str
    reason: str
    message: str
    wall: datetime.datetime
    at: float

    @property
    def correlation(self) -> tuple[str, ...]:
        involved = self.involved
        return (
            self.tenant,
            self.namespace,
            involved.get("apiVersion", ""),
            involved.get("kind", ""),
            involved.get("name", ""),
            involved.get("uid", ""),
            self.type,
            self.reason,
            self.message,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Recorded:
    name: str
    count: int
    at: float


def _wall_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class EventRecorder:
    """Writes Events for one component. Start `run` in the component's nursery."""

    def __init__(
        self,
        api: client.Client,
        *,
        component: str,
        host: str = "",
        buffer: int = BUFFER_SIZE,
        wall_clock: Callable[[], datetime.datetime] = _wall_clock,
    ) -> None:
        self._client = api
        self._component = component
        self._host = host
        self._wall_clock = wall_clock
        self._send, self._receive = trio.open_memory_channel[_Pending](buffer)
        self._recorded: collections.OrderedDict[tuple[str, ...], _Recorded] = (
            collections.OrderedDict()
        )
        self._last_name_nanos = 0

    def event(self, obj: Mapping[str, Any], type_: str, *, reason: str, message: str) -> None:
        """Record that `reason` happened to `obj`; `type_` is `Normal` or `Warning`."""
        try:
            pending = self._pending(obj, type_, reason=reason, message=message)
            self._send.send_nowait(pending)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            logger.debug("event buffer full; dropped %s %s: %s", type_, reason, message)
        except Exception:
            # Recording is best effort; the caller's work matters more than its event.
            logger.debug("could not record %s %s", type_, reason, exc_info=True)

    def _pending(
        self, obj: Mapping[str, Any], type_: str, *, reason: str, message: str
    ) -> _Pending:
        meta: Mapping[str, Any] = obj.get("metadata") or {}
        involved = {
            "kind": obj.get("kind"),
            "apiVersion": obj.get("apiVersion"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "tenant": meta.get("tenant"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if meta.get("namespace"):
            tenant, namespace = meta.get("tenant") or resources.SYSTEM_TENANT, meta["namespace"]
        elif meta.get("tenant"):
            tenant, namespace = meta["tenant"], "default"
        else:
            tenant, namespace = resources.SYSTEM_TENANT, "default"
        return _Pending(
            involved={k: str(v) for k, v in involved.items() if v},
            tenant=str(tenant),
            namespace=str(namespace),
            type=str(type_),
            reason=reason,
            message=message,
            wall=self._wall_clock(),
            at=trio.current_time(),
        )

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Write recorded events, forever."""
        logger.debug("event recorder for %s starting", self._component)
        task_status.started()
        try:
            async for pending in self._receive:
                await self._write(pending)
        finally:
            logger.debug("event recorder for %s stopped", self._component)
        raise AssertionError("the recorder holds its own send channel open")

    async def _write(self, pending: _Pending) -> None:
        key = pending.correlation
        try:
            previous = self._recorded.get(key)
            if previous is not None and pending.at - previous.at <= CORRELATION_WINDOW:
                try:
                    await self._client.patch(
                        EVENTS,
                        previous.name,
                        {
                            "count": previous.count + 1,
                            "lastTimestamp": timestamps.rfc3339(pending.wall),
                            "message": pending.message,
                        },
                        namespace=pending.namespace,
                        tenant=pending.tenant,
                    )
                except errors.NotFound:
                    pass  # Deleted since (events expire): write a new one.
                else:
                    self._remember(key, _Recorded(previous.name, previous.count + 1, pending.at))
                    return
            name = self._name(pending)
            await self._client.create(
                EVENTS,
                self._body(pending, name=name),
                namespace=pending.namespace,
                tenant=pending.tenant,
            )
            self._remember(key, _Recorded(name, 1, pending.at))
        except (client.Unreachable, errors.NotFound, errors.Forbidden) as exc:
            # The server is away, or the namespace is gone or terminating (events about a
            # tenant being deleted land in it): nothing to tell anyone.
            logger.debug("dropped event %s %s: %s", pending.type, pending.reason, exc)
        except errors.StatusError as exc:
            logger.warning(
                "the API refused event %s %s in %s/%s: %s",
                pending.type,
                pending.reason,
                pending.tenant,
                pending.namespace,
                exc,
            )

    def _remember(self, key: tuple[str, ...], recorded: _Recorded) -> None:
        self._recorded[key] = recorded
        self._recorded.move_to_end(key)
        while len(self._recorded) > CACHE_SIZE:
            self._recorded.popitem(last=False)

    def _name(self, pending: _Pending) -> str:
        # client-go names events `<object>.<unix nanos in hex>`; keep them unique here.
        nanos = int(pending.wall.timestamp() * 1e9)
        nanos = self._last_name_nanos = max(nanos, self._last_name_nanos + 1)
        return f"{pending.involved.get('name', 'event')}.{nanos:x}"

    def _body(self, pending: _Pending, *, name: str) -> Obj:
        timestamp = timestamps.rfc3339(pending.wall)
        source = {"component": self._component}
        if self._host:
            source["host"] = self._host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": pending.namespace, "tenant": pending.tenant},
            "involvedObject": dict(pending.involved),
            "reason": pending.reason,
            "message": pending.message,
            "type": pending.type,
            "source": source,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
            "reportingComponent": self._component,
            "reportingInstance": self._host,
        }
