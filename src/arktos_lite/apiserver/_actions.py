"""Arktos's `action` subresource of pods: `POST …/pods/{name}/action` with a `CustomAction`.

Both URL forms (tenant prefixed and short) are served. The request is authorized like
every write of the pod: a tenant's user reaches only its own tenant's pods, system users
every tenant. Guarantees:

* The body is a `CustomAction` (`apiVersion: v1`, `kind: CustomAction`) whose `operation`
  is `reboot` (`rebootParams.delayInSeconds`, an integer >= 0, default 0), `snapshot`
  (`snapshotParams.snapshotName`, required) or `restore` (`restoreParams.snapshotID`,
  required). Anything else is a 400 `BadRequest` naming the field; nothing is created.
* The pod must exist (404), not be being deleted (409), be a VM pod (`spec.virtualMachine`,
  400) and be bound to a node (400): an Action is never created without `spec.nodeName`,
  since the node's agent finds its actions by that field alone (an Arktos bug otherwise
  leaves the action waiting forever).
* On success an `Action` named `{operation}-{unixSeconds}` (with `-{n}` added when that name
  is taken) is created in the pod's tenant and namespace, owned by the pod (so the garbage
  collector removes it with the pod), with `spec: {nodeName, podName, podID, <op>Action}` and
  `status: {complete: false, podName, podID}`; the answer is a 201 `Status`
  "Created action '<op>' for Pod '<pod>'" whose `details` name the Action.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import quart
from quart_trio import QuartTrio

from arktos_lite.api import (
    _errors as errors,
    _resources as resources,
    _timestamps as timestamps,
)
from arktos_lite.apiserver import _authn as authn, _http as http, _rest as rest

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "CustomAction"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_POD_PATHS = (
    "/api/v1/namespaces/<namespace>/pods/<name>/",
    "/api/v1/tenants/<tenant>/namespaces/<namespace>/pods/<name>/",
)
# Per operation: the body's parameter object, the Action's spec field, and the parameter
# that must be a non-empty string (None: the reboot's optional delay).
_OPERATIONS: dict[str, tuple[str, str, str | None]] = {
    "reboot": ("rebootParams", "rebootAction", None),
    "snapshot": ("snapshotParams", "snapshotAction", "snapshotName"),
    "restore": ("restoreParams", "restoreAction", "snapshotID"),
}
# How many `-{n}` suffixes are tried when `{operation}-{unixSeconds}` is taken.
_NAME_ATTEMPTS = 100


def install(app: QuartTrio, api: http.Api) -> None:
    """Add the `pods/{name}/action` routes to the API server's app."""
    actions = _Actions(api)

    async def action(namespace: str, name: str, tenant: str | None = None) -> quart.Response:
        if quart.request.method != "POST":
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        return await actions.create(tenant=tenant, namespace=namespace, name=name)

    for prefix in _POD_PATHS:
        app.add_url_rule(
            prefix + "action", view_func=action, methods=_METHODS, endpoint=prefix + "action"
        )


def parse_custom_action(body: Any) -> tuple[str, Obj]:
    """The operation of a `CustomAction` body and the Action spec field it asks for.

    E.g. `("reboot", {"rebootAction": {"delayInSeconds": 10}})`; raises `BadRequest`.
    """
    if not isinstance(body, dict):
        raise errors.BadRequest("the request body must be a CustomAction object")
    kind = body.get("kind")
    if kind is not None and kind != KIND:
        raise errors.BadRequest(
            f"the kind in the data ({kind}) does not match the expected kind ({KIND})"
        )
    api_version = body.get("apiVersion")
    if api_version is not None and api_version != "v1":
        raise errors.BadRequest(
            f"the API version in the data ({api_version}) does not match the expected "
            "API version (v1)"
        )
    operation = body.get("operation")
    if operation is None or operation == "":
        raise errors.BadRequest(
            "operation: Required value: must be one of " + ", ".join(_OPERATIONS)
        )
    if not isinstance(operation, str) or operation not in _OPERATIONS:
        raise errors.BadRequest(
            f"unknown operation {operation!r}: must be one of " + ", ".join(_OPERATIONS)
        )
    params_field, spec_field, required = _OPERATIONS[operation]
    params = body.get(params_field)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise errors.BadRequest(f"{params_field}: must be an object")
    if required is None:
        delay = params.get("delayInSeconds", 0)
        if delay is None:
            delay = 0
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            raise errors.BadRequest(
                f"{params_field}.delayInSeconds: Invalid value: {delay!r}: must be an integer "
                "greater than or equal to 0"
            )
        return operation, {spec_field: {"delayInSeconds": delay}}
    value = params.get(required)
    if value is None or value == "":
        raise errors.BadRequest(f"{params_field}.{required}: Required value")
    if not isinstance(value, str):
        raise errors.BadRequest(f"{params_field}.{required}: Invalid value: must be a string")
    return operation, {spec_field: {required: value}}


def success_status(operation: str, pod: str, action: str) -> Obj:
    """Arktos's answer to a created action."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "message": f"Created action '{operation}' for Pod '{pod}'",
        "details": {"name": action, "kind": "actions"},
    }


class _Actions:
    def __init__(self, api: http.Api) -> None:
        self.api = api
        self.pods = _resource(api, "pods")
        self.actions = _resource(api, "actions")

    def _user(self) -> authn.User:
        request = quart.request
        user = self.api.authenticator.authenticate(
            request.headers.get("Authorization"), authn.peer_certificate(request.scope)
        )
        if user is None:
            raise errors.Unauthorized()
        return user

    async def create(self, *, tenant: str | None, namespace: str, name: str) -> quart.Response:
        user = self._user()
        where = rest.Where(tenant=tenant or user.tenant, namespace=namespace)
        if user.tenant != resources.SYSTEM_TENANT and where.tenant != user.tenant:
            raise errors.Forbidden.for_resource(
                "pods/action",
                name,
                why=f'User "{user.name}" cannot create resource "pods/action" in API group "" '
                f'in the tenant "{where.tenant}"',
            )
        if where.tenant == resources.ALL_TENANTS:
            raise errors.BadRequest("an action is for the pod of one tenant, not of all")
        operation, action_spec = parse_custom_action(await _body(self.api.limits.max_body_bytes))
        pod = await self.api.rest.get(self.pods, where, name)
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        if meta.get("deletionTimestamp"):
            raise errors.Conflict(f"pod {name} is being deleted: it takes no more actions")
        if not spec.get("virtualMachine"):
            raise errors.BadRequest(
                f"pod {name} is not a virtual machine pod (it has no spec.virtualMachine): "
                f"operation {operation!r} applies to virtual machines only"
            )
        node_name = spec.get("nodeName")
        if not node_name:
            raise errors.BadRequest(f"pod {name} is not bound to a node")
        uid = meta["uid"]
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Action",
            "metadata": {
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid},
                ],
            },
            "spec": {"nodeName": node_name, "podName": name, "podID": uid, **action_spec},
        }
        created = await self._create_named(
            where, f"{operation}-{int(timestamps.now().timestamp())}", body
        )
        await self._initial_status(
            where, created, {"complete": False, "podName": name, "podID": uid}
        )
        action = created["metadata"]["name"]
        logger.info(
            "created action %s/%s/%s (%s) for pod %s on node %s",
            where.tenant,
            namespace,
            action,
            operation,
            name,
            node_name,
        )
        return quart.Response(
            orjson.dumps(success_status(operation, name, action)),
            status=201,
            content_type="application/json",
        )

    async def _create_named(self, where: rest.Where, base: str, body: Obj) -> Obj:
        """Create `body` as `base`, or `base-1`, `base-2`, … when a name is taken."""
        for attempt in range(_NAME_ATTEMPTS):
            candidate = dict(body)
            candidate["metadata"] = {
                **body["metadata"],
                "name": base if attempt == 0 else f"{base}-{attempt}",
            }
            try:
                return await self.api.rest.create(self.actions, where, candidate)
            except errors.AlreadyExists:
                continue
        raise errors.AlreadyExists(
            f"actions {base} and {_NAME_ATTEMPTS - 1} suffixed names exist already; try again"
        )

    async def _initial_status(self, where: rest.Where, created: Obj, status: Obj) -> None:
        """Write the new Action's status (a create leaves it empty), unless someone did."""
        meta = created["metadata"]
        update = {
            "apiVersion": "v1",
            "kind": "Action",
            "metadata": {"name": meta["name"], "resourceVersion": meta["resourceVersion"]},
            "status": status,
        }
        try:
            await self.api.rest.update(
                self.actions, where, meta["name"], update, subresource="status"
            )
        except (errors.Conflict, errors.NotFound):
            # The agent took it up (and wrote its status) or it is gone already: what
            # they wrote is newer than this initial state.
            logger.debug("action %s changed before its initial status was written", meta["name"])


async def _body(limit: int) -> Any:
    data = await http.raw_body(limit)
    if not data.strip():
        raise errors.BadRequest("the request body is empty: send a CustomAction")
    return http.parse_body(data)


def _resource(api: http.Api, plural: str) -> resources.Resource:
    resource = api.registry.get("", "v1", plural)
    assert resource is not None, plural
    return resource
