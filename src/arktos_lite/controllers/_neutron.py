"""The Neutron network controller: VM pods' NICs become OpenStack Neutron ports.

Guarantees, for a pod with `spec.virtualMachine` and `spec.nics`:

* Before any port is made for it, the pod carries the finalizer `FINALIZER`; it is taken
  off only after every port made for the pod is deleted from Neutron, so no port outlives
  its pod, and a pod never stays because of it once Neutron has answered.
* Each NIC without `portId` gets a port on the Neutron network named by `spec.vpc` (in
  the configured project, or shared), with a fixed IP on the subnet named by the NIC's
  `subnetName` (the address `ipAddress` when given, else one Neutron picks). A port is
  named `arktos-<pod uid>-<nic name>` and has `device_id` = the pod's uid: a port made
  before a crash is found and used again, never made twice.
* Once the pod has `spec.nodeName`, each port (also a NIC's own `portId`) is bound to
  that node (`binding:host_id`).
* `portId` and `ipAddress` of each NIC are written back into `spec.nics`; the pod's
  `status.nicStatuses` (`name`, `portId`, `macAddress`, `ipAddress`, `state`, `reason`)
  and its condition `NetworkReady` say what Neutron has.
* A Neutron error or an unreachable Neutron becomes a Warning event on the pod and the
  condition `NetworkReady` False with the reason (`NeutronUnavailable`, `NeutronError`,
  `NetworkNotFound`, `SubnetNotFound`, `BindingFailed`; `AuthenticationFailed` when
  Keystone refuses the credentials), and the pod is tried again with
  backoff (`backoff_base` doubling up to `backoff_cap` seconds) until Neutron answers;
  then the condition turns True. A port the controller did not make (a NIC's own `portId`)
  is never deleted.
* Ports of a deleted pod go once the pod no longer runs: it was never scheduled, its
  grace period is over (`deletionGracePeriodSeconds` 0) or its phase is final. Should
  Neutron stay away for `release_timeout` seconds past the pod's deletion deadline, the
  finalizer comes off anyway (a Warning event `PortsLeftBehind` says so): a pod is never
  stuck on Neutron. Such ports, and any other port of this controller's
  (`device_owner` `compute:arktos`) older than `sweep_grace` seconds whose `device_id` is
  no pod's uid, are deleted by a sweep every `sweep_period` seconds.

Neutron is reached over its REST API with `noauth` (the project id goes into every
request body) or a Keystone v3 password token (renewed on 401 and before it expires).
The request bodies and the NIC/port matching are pure functions, below.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import logging
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import trio
import yaml

from arktos_lite import client, machinery
from arktos_lite.api import errors, resources, timestamps
from arktos_lite.controllers import _common as common

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

PODS = next(r for r in resources.RESOURCES if (r.group, r.kind) == ("", "Pod"))

FINALIZER = "arktos.futurewei.com/neutron-ports"
CONDITION = "NetworkReady"
DEVICE_OWNER = "compute:arktos"

# Condition reasons (also the reasons of Warning events).
NEUTRON_UNAVAILABLE = "NeutronUnavailable"
NEUTRON_ERROR = "NeutronError"
NETWORK_NOT_FOUND = "NetworkNotFound"
SUBNET_NOT_FOUND = "SubnetNotFound"
BINDING_FAILED = "BindingFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
NO_VPC = "NoVPC"
WAITING_FOR_NODE = "WaitingForNode"
PORTS_LEFT_BEHIND = "PortsLeftBehind"
PORTS_READY = "PortsReady"


class Auth(enum.StrEnum):
    NOAUTH = "noauth"
    PASSWORD = "password"


@dataclasses.dataclass(frozen=True, slots=True)
class NeutronConfig:
    """Where Neutron is and how to prove who we are."""

    # Neutron's endpoint (e.g. http://127.0.0.1:9696); with password auth it may be empty:
    # the Keystone catalog's public `network` endpoint is used then.
    url: str = ""
    auth: Auth = Auth.NOAUTH
    # noauth: the project every port is made in (required).
    project_id: str = ""
    keystone_url: str = ""
    username: str = ""
    password: str = ""
    project_name: str = ""
    user_domain: str = "Default"
    project_domain: str = "Default"
    timeout: float = 10.0

    def check(self) -> None:
        """Raises ValueError with a message fit for the user when something is missing."""
        if self.auth is Auth.NOAUTH:
            if not self.url:
                raise ValueError("noauth needs the Neutron URL")
            if not self.project_id:
                raise ValueError("noauth needs a project id")
        else:
            missing = [
                flag
                for flag, value in (
                    ("keystone URL", self.keystone_url),
                    ("user name", self.username),
                    ("password", self.password),
                    ("project name", self.project_name),
                )
                if not value
            ]
            if missing:
                raise ValueError("password auth needs the " + ", ".join(missing))

    @classmethod
    def from_file(cls, path: pathlib.Path | None, **overrides: Any) -> NeutronConfig:
        """A YAML (or JSON) file of `url`, `auth`, `projectId` and `keystone:` {`url`,
        `username`, `password`, `projectName`, `userDomain`, `projectDomain`} (None: no
        file); non-empty `overrides` (field names) win. Raises ValueError for an
        unreadable file."""
        try:
            data = (yaml.safe_load(path.read_text()) or {}) if path is not None else {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a mapping")
        keystone = data.get("keystone") or {}
        values: dict[str, Any] = {
            "url": data.get("url", ""),
            "auth": data.get("auth", Auth.NOAUTH.value),
            "project_id": data.get("projectId", ""),
            "keystone_url": keystone.get("url", ""),
            "username": keystone.get("username", ""),
            "password": keystone.get("password", ""),
            "project_name": keystone.get("projectName", ""),
            "user_domain": keystone.get("userDomain", "Default"),
            "project_domain": keystone.get("projectDomain", "Default"),
        }
        values.update({k: v for k, v in overrides.items() if v})
        try:
            auth = Auth(values.pop("auth"))
        except ValueError:
            raise ValueError("auth must be noauth or password") from None
        strings: dict[str, Any] = {k: str(v) for k, v in values.items()}
        return cls(auth=auth, **strings)

    def to_yaml(self) -> str:
        """The file `from_file` reads back as this configuration (its `timeout` aside).
        It holds the password: write it where only its owner reads it."""
        data: Obj = {"url": self.url, "auth": self.auth.value, "projectId": self.project_id}
        if self.auth is Auth.PASSWORD:
            data["keystone"] = {
                "url": self.keystone_url,
                "username": self.username,
                "password": self.password,
                "projectName": self.project_name,
                "userDomain": self.user_domain,
                "projectDomain": self.project_domain,
            }
        return yaml.safe_dump(data, sort_keys=False)


# Pure parts: what to ask Neutron for, and what its answers mean for a pod.


class NeutronError(Exception):
    """Neutron answered with an error, or could not be reached (`status` 0)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = NEUTRON_ERROR) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def keystone_request(config: NeutronConfig) -> Obj:
    """The body of Keystone v3's POST /v3/auth/tokens for a project-scoped password token."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": config.username,
                        "domain": {"name": config.user_domain},
                        "password": config.password,
                    }
                },
            },
            "scope": {
                "project": {"name": config.project_name, "domain": {"name": config.project_domain}}
            },
        }
    }


def catalog_endpoint(token: Mapping[str, Any], *, service: str = "network") -> str | None:
    """The public endpoint of `service` in a Keystone v3 token's catalog."""
    for entry in token.get("catalog") or ():
        if entry.get("type") != service:
            continue
        for endpoint in entry.get("endpoints") or ():
            if endpoint.get("interface") == "public" and endpoint.get("url"):
                return str(endpoint["url"]).rstrip("/")
    return None


def port_name(pod: Mapping[str, Any], nic: Mapping[str, Any]) -> str:
    return f"arktos-{pod['metadata']['uid']}-{nic.get('name', '')}"


def port_request(
    pod: Mapping[str, Any],
    nic: Mapping[str, Any],
    *,
    network_id: str,
    subnet_id: str | None,
    project_id: str | None,
) -> Obj:
    """The body of POST /v2.0/ports for one NIC of the pod."""
    meta = pod["metadata"]
    port: Obj = {
        "name": port_name(pod, nic),
        "network_id": network_id,
        "device_id": meta["uid"],
        "device_owner": DEVICE_OWNER,
        "description": (
            f"arktos pod {meta.get('tenant') or resources.SYSTEM_TENANT}/"
            f"{meta.get('namespace')}/{meta['name']} nic {nic.get('name', '')}"
        ),
    }
    if subnet_id is not None:
        fixed: Obj = {"subnet_id": subnet_id}
        if nic.get("ipAddress"):
            fixed["ip_address"] = nic["ipAddress"]
        port["fixed_ips"] = [fixed]
    elif nic.get("ipAddress"):
        port["fixed_ips"] = [{"ip_address": nic["ipAddress"]}]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        port["binding:host_id"] = node
    if project_id:
        port["project_id"] = project_id
    return {"port": port}


def nics_of(pod: Mapping[str, Any]) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [dict(n) for n in spec.get("nics") or () if isinstance(n, dict) and n.get("name")]


def wants_ports(pod: Mapping[str, Any]) -> bool:
    """A VM pod with NICs: this controller's business."""
    spec = pod.get("spec") or {}
    return bool(spec.get("virtualMachine")) and bool(nics_of(pod))


def match_ports(
    pod: Mapping[str, Any], ports: Sequence[Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """Which port each NIC has: its own `portId`'s, else the one made for it before."""
    by_id = {p.get("id"): p for p in ports}
    by_name = {p.get("name"): p for p in ports}
    matched: dict[str, Mapping[str, Any]] = {}
    for nic in nics_of(pod):
        port = by_id.get(nic.get("portId")) if nic.get("portId") else None
        if port is None and not nic.get("portId"):
            port = by_name.get(port_name(pod, nic))
        if port is not None:
            matched[nic["name"]] = port
    return matched


def address_of(port: Mapping[str, Any]) -> str | None:
    for fixed in port.get("fixed_ips") or ():
        if fixed.get("ip_address"):
            return str(fixed["ip_address"])
    return None


def written_back(pod: Mapping[str, Any], ports: Mapping[str, Mapping[str, Any]]) -> list[Obj]:
    """`spec.nics` with `portId` and `ipAddress` filled in from the ports."""
    nics = []
    for nic in nics_of(pod):
        port = ports.get(nic["name"])
        if port is not None:
            if not nic.get("portId"):
                nic["portId"] = port["id"]
            address = address_of(port)
            if address and not nic.get("ipAddress"):
                nic["ipAddress"] = address
        nics.append(nic)
    return nics


def bound(port: Mapping[str, Any], node: str) -> bool:
    return port.get("binding:host_id") == node and port.get("binding:vif_type") not in (
        "binding_failed",
        "unbound",
        None,
    )


def nic_statuses(pod: Mapping[str, Any], ports: Mapping[str, Mapping[str, Any]]) -> list[Obj]:
    """`status.nicStatuses`: one entry per NIC (state Pending, Ready or Failed)."""
    node = (pod.get("spec") or {}).get("nodeName")
    statuses = []
    for nic in nics_of(pod):
        port = ports.get(nic["name"])
        entry: Obj = {"name": nic["name"]}
        if port is None:
            entry.update(state="Pending", reason="NoPort")
        else:
            entry.update(portId=port["id"], macAddress=port.get("mac_address", ""))
            address = address_of(port)
            if address:
                entry["ipAddress"] = address
            if not node:
                entry.update(state="Pending", reason=WAITING_FOR_NODE)
            elif port.get("binding:vif_type") == "binding_failed":
                entry.update(state="Failed", reason=BINDING_FAILED)
            elif bound(port, node):
                entry.update(state="Ready", reason=PORTS_READY)
            else:
                entry.update(state="Pending", reason="NotBound")
        statuses.append(entry)
    return statuses


def network_condition(statuses: Sequence[Mapping[str, Any]]) -> tuple[bool, str, str]:
    """`NetworkReady`'s status, reason and message from the NIC statuses."""
    failed = [s for s in statuses if s.get("state") == "Failed"]
    if failed:
        names = ", ".join(s["name"] for s in failed)
        return False, BINDING_FAILED, f"Neutron could not bind the port of NIC {names}"
    pending = [s for s in statuses if s.get("state") != "Ready"]
    if pending:
        reason = str(pending[0].get("reason") or "Pending")
        return False, reason, f"{len(pending)} of {len(statuses)} NICs are not ready"
    return True, PORTS_READY, f"{len(statuses)} Neutron ports bound"


def with_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    ready: bool,
    reason: str,
    message: str,
    now: str,
) -> list[Obj] | None:
    """The pod's conditions with `NetworkReady` set; None when it says so already."""
    status = "True" if ready else "False"
    result: list[Obj] = []
    found = False
    for cond in conditions:
        if cond.get("type") != CONDITION:
            result.append(dict(cond))
            continue
        found = True
        if (cond.get("status"), cond.get("reason"), cond.get("message")) == (
            status,
            reason,
            message,
        ):
            return None
        changed = cond.get("status") != status
        result.append(
            {
                "type": CONDITION,
                "status": status,
                "reason": reason,
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": now if changed else cond.get("lastTransitionTime", now),
            }
        )
    if not found:
        result.append(
            {
                "type": CONDITION,
                "status": status,
                "reason": reason,
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
        )
    return result


def orphans(
    ports: Sequence[Mapping[str, Any]],
    uids: set[str],
    *,
    now: datetime.datetime,
    grace: float,
) -> list[str]:
    """The ids of this controller's ports whose pod is gone, made more than `grace`
    seconds ago (a port made a moment ago may belong to a pod the cache has not seen)."""
    found = []
    for port in ports:
        if port.get("device_owner") != DEVICE_OWNER or port.get("device_id") in uids:
            continue
        created = timestamps.parse(port.get("created_at"))
        if created is not None and (now - created).total_seconds() < grace:
            continue
        found.append(str(port["id"]))
    return found


def overdue(pod: Mapping[str, Any], *, now: datetime.datetime, timeout: float) -> bool:
    """Whether a deleted pod has waited `timeout` seconds past its deletion deadline."""
    deadline = timestamps.parse((pod.get("metadata") or {}).get("deletionTimestamp"))
    return deadline is not None and (now - deadline).total_seconds() >= timeout


def releasable(pod: Mapping[str, Any]) -> bool:
    """Whether a deleted pod's ports may go: the pod no longer runs anywhere."""
    meta = pod.get("metadata") or {}
    if not (pod.get("spec") or {}).get("nodeName"):
        return True
    if meta.get("deletionGracePeriodSeconds") == 0:
        return True
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


# Neutron's REST API


class NeutronClient:
    """The few calls of Neutron's v2.0 API this controller makes."""

    def __init__(self, config: NeutronConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        self._config = config
        self._http = httpx.AsyncClient(timeout=config.timeout, transport=transport)
        self._token: str | None = None
        self._token_expires: datetime.datetime | None = None
        self._url = config.url.rstrip("/")
        self._lock = trio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def project_id(self) -> str | None:
        """The project put into request bodies: noauth's; a token carries its own."""
        if self._config.auth is Auth.NOAUTH:
            return self._config.project_id or None
        return None

    async def _authenticate(self) -> None:
        config = self._config
        url = config.keystone_url.rstrip("/")
        if not url.endswith("/v3"):
            url += "/v3"
        try:
            answer = await self._http.post(f"{url}/auth/tokens", json=keystone_request(config))
        except httpx.HTTPError as exc:
            raise NeutronError(
                f"Keystone at {config.keystone_url} unreachable: {exc}",
                reason=NEUTRON_UNAVAILABLE,
            ) from None
        if answer.status_code in (401, 403):
            raise NeutronError(
                f"Keystone at {config.keystone_url} refused the credentials of user "
                f"{config.username!r} for project {config.project_name!r} "
                f"({answer.status_code}): {_fault(answer, 'error')}",
                status=answer.status_code,
                reason=AUTHENTICATION_FAILED,
            )
        if answer.status_code != 201:
            raise NeutronError(
                f"Keystone at {config.keystone_url} answered {answer.status_code}: "
                f"{_fault(answer, 'error')}",
                status=answer.status_code,
                reason=NEUTRON_UNAVAILABLE if answer.status_code >= 500 else NEUTRON_ERROR,
            )
        try:
            token = answer.json().get("token") or {}
        except (ValueError, AttributeError):
            token = {}
        self._token = answer.headers.get("X-Subject-Token")
        if not self._token:
            raise NeutronError("Keystone answered without a token (no X-Subject-Token)")
        expires = token.get("expires_at")
        self._token_expires = (
            datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None
        )
        if not self._url:
            endpoint = catalog_endpoint(token)
            if endpoint is None:
                raise NeutronError("the Keystone catalog has no public network endpoint")
            self._url = endpoint

    async def _headers(self) -> dict[str, str]:
        if self._config.auth is Auth.NOAUTH:
            return {}
        async with self._lock:
            soon = timestamps.now() + datetime.timedelta(seconds=60)
            if self._token is None or (self._token_expires and self._token_expires < soon):
                await self._authenticate()
        assert self._token is not None
        return {"X-Auth-Token": self._token}

    async def request(
        self, method: str, path: str, *, body: Obj | None = None, params: Obj | None = None
    ) -> Obj:
        """The JSON answer (empty for 204). Raises NeutronError; 404 has `status` 404."""
        for attempt in range(2):
            headers = await self._headers()
            try:
                answer = await self._http.request(
                    method, f"{self._url}/v2.0/{path}", json=body, params=params, headers=headers
                )
            except httpx.HTTPError as exc:
                raise NeutronError(
                    f"Neutron at {self._url} unreachable: {exc!r}", reason=NEUTRON_UNAVAILABLE
                ) from None
            if answer.status_code == 401 and self._config.auth is Auth.PASSWORD and attempt == 0:
                self._token = None
                continue
            if answer.status_code >= 400:
                reason = NEUTRON_UNAVAILABLE if answer.status_code >= 500 else NEUTRON_ERROR
                raise NeutronError(
                    f"Neutron {method} {path}: {answer.status_code} {_fault(answer)}",
                    status=answer.status_code,
                    reason=reason,
                )
            if not answer.content:
                return {}
            try:
                answer_body = answer.json()
            except ValueError:
                answer_body = None
            if not isinstance(answer_body, dict):
                raise NeutronError(
                    f"Neutron {method} {path}: not a JSON object: {answer.text[:200]}"
                )
            return answer_body
        raise AssertionError("unreachable")

    async def find(self, collection: str, **filters: str) -> list[Obj]:
        found = await self.request("GET", collection, params=filters)
        return list(found.get(collection) or [])

    async def network(self, name: str) -> Obj:
        networks = await self.find("networks", name=name)
        mine = [n for n in networks if self.project_id and n.get("project_id") == self.project_id]
        if not networks:
            raise NeutronError(f"no Neutron network {name!r}", reason=NETWORK_NOT_FOUND)
        return (mine or networks)[0]

    async def subnet(self, network_id: str, name: str) -> Obj:
        subnets = await self.find("subnets", network_id=network_id, name=name)
        if not subnets:
            raise NeutronError(
                f"no subnet {name!r} on the Neutron network {network_id}",
                reason=SUBNET_NOT_FOUND,
            )
        return subnets[0]

    async def ports_of(self, device_id: str) -> list[Obj]:
        return await self.find("ports", device_id=device_id)

    async def port(self, port_id: str) -> Obj | None:
        try:
            return dict((await self.request("GET", f"ports/{port_id}"))["port"])
        except NeutronError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_port(self, body: Obj) -> Obj:
        return dict((await self.request("POST", "ports", body=body))["port"])

    async def bind_port(self, port_id: str, node: str) -> Obj:
        answer = await self.request(
            "PUT", f"ports/{port_id}", body={"port": {"binding:host_id": node}}
        )
        return dict(answer["port"])

    async def delete_port(self, port_id: str) -> None:
        try:
            await self.request("DELETE", f"ports/{port_id}")
        except NeutronError as exc:
            if exc.status != 404:
                raise


def _fault(answer: httpx.Response, key: str = "NeutronError") -> str:
    """The message of an OpenStack error answer: its `key` object's (Neutron's
    `NeutronError`, Keystone's `error`), else the body."""
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:200]
    fault = data.get(key) if isinstance(data, dict) else None
    if isinstance(fault, dict):
        return str(fault.get("message") or fault)[:200]
    return str(data)[:200]


# The controller


class NeutronController:
    """See the module docs. Construct before the informer factory starts; then `run`."""

    def __init__(
        self,
        api: client.Client,
        informers: machinery.InformerFactory,
        *,
        recorder: machinery.EventRecorder,
        config: NeutronConfig,
        workers: int = 2,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        release_timeout: float = 300.0,
        sweep_period: float = 300.0,
        sweep_grace: float = 60.0,
        wall_clock: Callable[[], datetime.datetime] = timestamps.now,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        config.check()
        self._api = api
        self._recorder = recorder
        self._config = config
        self._transport = transport
        self._workers = workers
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._release_timeout = release_timeout
        self._sweep_period = sweep_period
        self._sweep_grace = sweep_grace
        self._wall_clock = wall_clock
        self._failures: dict[str, int] = {}
        self._neutron: NeutronClient | None = None
        self._queue: machinery.WorkQueue[str] = machinery.WorkQueue()
        self._pods = informers.informer(PODS)
        self._pods.add_handler(on_add=self._seen, on_update=lambda _old, new: self._seen(new))

    def _seen(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if wants_ports(pod) or FINALIZER in (meta.get("finalizers") or ()):
            self._queue.add(self._pods.key(pod))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._neutron = NeutronClient(self._config, transport=self._transport)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    functools.partial(
                        common.work,
                        self._queue,
                        self._sync,
                        workers=self._workers,
                        what="neutron",
                        logger=logger,
                    )
                )
                nursery.start_soon(self._sweep_forever)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await self._neutron.aclose()

    async def _sweep_forever(self) -> None:
        await self._pods.wait_synced()
        while True:
            await trio.sleep(self._sweep_period)
            try:
                await self.sweep()
            except NeutronError as exc:
                logger.debug("no sweep of left-behind ports: %s", exc)

    async def sweep(self) -> list[str]:
        """Delete this controller's ports whose pod is gone; their ids."""
        neutron = self._neutron
        assert neutron is not None
        ports = await neutron.find("ports", device_owner=DEVICE_OWNER)
        uids = {str((p.get("metadata") or {}).get("uid")) for p in self._pods.list()}
        gone = orphans(ports, uids, now=self._wall_clock(), grace=self._sweep_grace)
        for port_id in gone:
            await neutron.delete_port(port_id)
            logger.info("deleted port %s: its pod is gone", port_id)
        return gone

    async def _sync(self, key: str) -> None:
        pod = self._pods.get(key)
        if pod is None:
            self._failures.pop(key, None)
            return
        try:
            if pod["metadata"].get("deletionTimestamp"):
                await self._release(pod)
            elif wants_ports(pod):
                await self._provide(pod)
        except NeutronError as exc:
            await self._report_failure(key, pod, exc)
            return
        self._failures.pop(key, None)

    async def _report_failure(self, key: str, pod: Obj, exc: NeutronError) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self._backoff_base * 2.0 ** min(failures, 32), self._backoff_cap)
        logger.info("pod %s: %s; retrying in %.1f s", key, exc, delay)
        self._recorder.event(pod, machinery.EventType.WARNING, reason=exc.reason, message=str(exc))
        if pod["metadata"].get("deletionTimestamp"):
            if overdue(pod, now=self._wall_clock(), timeout=self._release_timeout):
                message = f"ports left behind for the sweep: {exc}"
                self._recorder.event(
                    pod, machinery.EventType.WARNING, reason=PORTS_LEFT_BEHIND, message=message
                )
                await self._drop_finalizer(pod)
                self._failures.pop(key, None)
                return
        else:
            await self._write_status(pod, None, ready=False, reason=exc.reason, message=str(exc))
        raise machinery.Requeue(delay)

    async def _provide(self, pod: Obj) -> None:
        meta = pod["metadata"]
        if FINALIZER not in (meta.get("finalizers") or ()):
            # No port before the finalizer that removes it: the update comes back here.
            await self._patch(
                pod,
                {"metadata": {"finalizers": [*(meta.get("finalizers") or ()), FINALIZER]}},
            )
            return
        neutron = self._neutron
        assert neutron is not None
        spec = pod.get("spec") or {}
        vpc = spec.get("vpc")
        if not vpc:
            await self._write_status(
                pod,
                None,
                ready=False,
                reason=NO_VPC,
                message="spec.vpc names no Neutron network",
            )
            return
        node = spec.get("nodeName")
        ports = dict(match_ports(pod, await neutron.ports_of(meta["uid"])))
        network: Obj | None = None
        for nic in nics_of(pod):
            name = nic["name"]
            if name not in ports and nic.get("portId"):
                found = await neutron.port(nic["portId"])
                if found is None:
                    raise NeutronError(
                        f"NIC {name}: no Neutron port {nic['portId']}", reason=NEUTRON_ERROR
                    )
                ports[name] = found
            if name not in ports:
                if network is None:
                    network = await neutron.network(vpc)
                subnet = None
                if nic.get("subnetName"):
                    subnet = (await neutron.subnet(network["id"], nic["subnetName"]))["id"]
                body = port_request(
                    pod,
                    nic,
                    network_id=network["id"],
                    subnet_id=subnet,
                    project_id=neutron.project_id,
                )
                ports[name] = await neutron.create_port(body)
                logger.info("pod %s nic %s: created port %s", meta["name"], name, ports[name]["id"])
            if node and ports[name].get("binding:host_id") != node:
                ports[name] = await neutron.bind_port(ports[name]["id"], node)
        nics = written_back(pod, ports)
        if nics != nics_of(pod):
            pod = await self._patch(pod, {"spec": {"nics": nics}})
        statuses = nic_statuses(pod, ports)
        ready, reason, message = network_condition(statuses)
        if reason == BINDING_FAILED:
            self._recorder.event(pod, machinery.EventType.WARNING, reason=reason, message=message)
        await self._write_status(pod, statuses, ready=ready, reason=reason, message=message)

    async def _release(self, pod: Obj) -> None:
        meta = pod["metadata"]
        if FINALIZER not in (meta.get("finalizers") or ()):
            return
        if not releasable(pod):
            # Looked at again when the agent ends the pod (an update), or at its deadline.
            raise machinery.Requeue(max(float(meta.get("deletionGracePeriodSeconds") or 1), 1.0))
        neutron = self._neutron
        assert neutron is not None
        for port in await neutron.ports_of(meta["uid"]):
            if port.get("device_owner") == DEVICE_OWNER:
                await neutron.delete_port(port["id"])
                logger.info("pod %s: deleted port %s", meta["name"], port["id"])
        await self._drop_finalizer(pod)

    async def _drop_finalizer(self, pod: Obj) -> None:
        finalizers = [f for f in pod["metadata"].get("finalizers") or () if f != FINALIZER]
        await self._patch(pod, {"metadata": {"finalizers": finalizers}})

    async def _patch(self, pod: Obj, patch: Obj) -> Obj:
        """A merge patch of the pod at the version it was decided on."""
        meta = pod["metadata"]
        patch = {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": meta["resourceVersion"]},
        }
        try:
            return await self._api.patch(
                PODS,
                meta["name"],
                patch,
                tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
                namespace=meta["namespace"],
            )
        except errors.NotFound:
            raise machinery.Requeue(0) from None
        except errors.Conflict:
            raise machinery.Requeue() from None

    async def _write_status(
        self,
        pod: Obj,
        statuses: list[Obj] | None,
        *,
        ready: bool,
        reason: str,
        message: str,
    ) -> None:
        status = pod.get("status") or {}
        conditions = with_condition(
            status.get("conditions") or (),
            ready=ready,
            reason=reason,
            message=message,
            now=timestamps.rfc3339(timestamps.now()),
        )
        body: Obj = {}
        if conditions is not None:
            body["conditions"] = conditions
        if statuses is not None and statuses != status.get("nicStatuses"):
            body["nicStatuses"] = statuses
        if not body:
            return
        meta = pod["metadata"]
        try:
            await self._api.patch(
                PODS,
                meta["name"],
                {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": body},
                tenant=meta.get("tenant") or resources.SYSTEM_TENANT,
                namespace=meta["namespace"],
                subresource="status",
            )
        except errors.NotFound:
            return
        except errors.Conflict:
            raise machinery.Requeue() from None
        if ready:
            logger.info("pod %s: %s", meta["name"], message)
