"""Pods' `log` and `exec` through the API server to the node agent, and TokenReview.

`GET …/pods/{name}/log` and the websocket `…/pods/{name}/exec` (both URL forms, tenant
prefixed and short) are authorized like reading the pod: a tenant's user reaches only its
own tenant's pods. The API server finds the pod's node (its InternalIP and
`daemonEndpoints.kubeletEndpoint.Port`) and calls the agent over HTTPS, without verifying
its self-signed certificate (as kube-apiserver without `--kubelet-certificate-authority`),
as itself: user `system:apiserver` with an in-memory token the agent checks back through
`tokenreviews`. On a partition without the cluster-scoped objects, the Node is read from
the designated partition's server (`Api.designated`) and the API server presents that
connection's bearer token instead, since the agent checks tokens there; without such a
connection the answer is a 503 that says so. Log bodies stream through as they come; exec
relays channel.k8s.io websocket messages both ways. Failures before the upgrade are
`Status` answers; an exec request without a websocket upgrade (SPDY) is refused with
"Upgrade request required".
"""

from __future__ import annotations

import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import quart
import trio_websocket
from quart_trio import QuartTrio

from arktos_lite import client
from arktos_lite.api import _errors as errors, _resources as resources
from arktos_lite.apiserver import _authn as authn, _http as http, _rest as rest
from arktos_lite.runtime import stream

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

TENANT_EXTRA = "arktos.futurewei.com/tenant"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_LOG_PARAMETERS = (
    "follow",
    "previous",
    "tailLines",
    "sinceSeconds",
    "sinceTime",
    "timestamps",
    "limitBytes",
)
_EXEC_PARAMETERS = ("stdin", "stdout", "stderr", "tty")
_POD_PATHS = (
    "/api/v1/namespaces/<namespace>/pods/<name>/",
    "/api/v1/tenants/<tenant>/namespaces/<namespace>/pods/<name>/",
)


def _insecure_context() -> ssl.SSLContext:
    # Verifies nothing, so loads no CA certificates (the system's bundle costs memory).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def install(app: QuartTrio, api: http.Api) -> None:
    """Add the routes of this module to the API server's app."""
    proxy = _Proxy(api)

    async def log(namespace: str, name: str, tenant: str | None = None) -> quart.Response:
        if quart.request.method != "GET":
            raise _method_not_allowed()
        return await proxy.log(tenant=tenant, namespace=namespace, name=name)

    async def exec_without_upgrade(
        namespace: str, name: str, tenant: str | None = None
    ) -> quart.Response:
        if quart.request.method not in ("GET", "POST"):
            raise _method_not_allowed()
        await proxy.exec_target(quart.request, tenant=tenant, namespace=namespace, name=name)
        raise errors.BadRequest("Upgrade request required")

    async def exec_websocket(namespace: str, name: str, tenant: str | None = None) -> Any:
        return await proxy.exec(tenant=tenant, namespace=namespace, name=name)

    for prefix in _POD_PATHS:
        app.add_url_rule(prefix + "log", view_func=log, methods=_METHODS, endpoint=prefix + "log")
        app.add_url_rule(
            prefix + "exec",
            view_func=exec_without_upgrade,
            methods=_METHODS,
            endpoint=prefix + "exec",
        )
        app.add_websocket(prefix + "exec", view_func=exec_websocket, endpoint=prefix + "exec-ws")

    async def tokenreviews() -> quart.Response:
        if quart.request.method != "POST":
            raise _method_not_allowed()
        return await proxy.token_review()

    app.add_url_rule(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        view_func=tokenreviews,
        methods=_METHODS,
        endpoint="tokenreviews",
    )


def _method_not_allowed() -> errors.MethodNotAllowed:
    return errors.MethodNotAllowed(
        "the server does not allow this method on the requested resource"
    )


class _Target:
    """A pod's container and the agent that serves it."""

    def __init__(
        self, *, tenant: str, namespace: str, pod: str, container: str, agent: str
    ) -> None:
        self.tenant = tenant
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.agent = agent

    def path(self, kind: str) -> str:
        parts = (self.tenant, self.namespace, self.pod, self.container)
        return f"/{kind}/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


class _Proxy:
    def __init__(self, api: http.Api) -> None:
        self.api = api
        self.pods = _resource(api, "", "pods")
        self.nodes = _resource(api, "", "nodes")
        self.ssl = _insecure_context()

    def _user(self, headers: Any, scope: Any) -> authn.User:
        user = self.api.authenticator.authenticate(
            headers.get("Authorization"), authn.peer_certificate(scope)
        )
        if user is None:
            raise errors.Unauthorized()
        return user

    def _headers(self) -> dict[str, str]:
        designated = self.api.designated
        if designated is not None and designated.config.token:
            return {"Authorization": f"Bearer {designated.config.token}"}
        return {"Authorization": f"Bearer {self.api.authenticator.loopback_token}"}

    async def _node(self, name: str) -> dict[str, Any]:
        """The Node `name`: here, or on the designated partition if nodes live there."""
        partition = self.api.rest.partition
        if partition is None or partition.tenants.designated:
            return await self.api.rest.get(
                self.nodes, rest.Where(tenant=resources.SYSTEM_TENANT), name
            )
        designated = self.api.designated
        if designated is None:
            raise errors.ServiceUnavailable(
                f"node {name} is kept by the designated partition, and this API server "
                f'(partition "{partition.name}") has no connection to it '
                "(arktos apiserver --cluster-kubeconfig)"
            )
        try:
            return await designated.get(self.nodes, name)
        except client.Unreachable as error:
            raise errors.ServiceUnavailable(
                f"cannot reach the designated partition to find node {name}: {error}"
            ) from None

    async def _target(
        self,
        user: authn.User,
        *,
        tenant: str | None,
        namespace: str,
        name: str,
        container: str | None,
        subresource: str,
    ) -> _Target:
        where = rest.Where(tenant=tenant or user.tenant, namespace=namespace)
        if user.tenant != resources.SYSTEM_TENANT and where.tenant != user.tenant:
            verb = "get" if subresource == "log" else "create"
            raise errors.Forbidden.for_resource(
                f"pods/{subresource}",
                name,
                why=f'User "{user.name}" cannot {verb} resource "pods/{subresource}" in API '
                f'group "" in the tenant "{where.tenant}"',
            )
        pod = await self.api.rest.get(self.pods, where, name)
        spec = pod.get("spec") or {}
        names = [str(c.get("name")) for c in spec.get("containers") or ()]
        vm = spec.get("virtualMachine")
        if vm:
            # A VM pod's one container is its VM (named as the agent names it): its log is
            # the serial console.
            names.append(str(vm.get("name") or "vm"))
        others = [str(c.get("name")) for c in spec.get("initContainers") or ()]
        if not container:
            if len(names) != 1:
                raise errors.BadRequest(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(names)}]"
                )
            container = names[0]
        elif container not in names and container not in others:
            raise errors.BadRequest(f"container {container} is not valid for pod {name}")
        node_name = spec.get("nodeName")
        if not node_name:
            raise errors.BadRequest(f"pod {name} does not have a host assigned")
        node = await self._node(node_name)
        status = node.get("status") or {}
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or ()}
        address = addresses.get("InternalIP") or addresses.get("Hostname")
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not address or not port:
            raise errors.ServiceUnavailable(f"node {node_name} does not say where its agent is")
        host = f"[{address}]" if ":" in str(address) else str(address)
        return _Target(
            tenant=where.tenant,
            namespace=namespace,
            pod=name,
            container=container,
            agent=f"https://{host}:{port}",
        )

    # Logs

    async def log(self, *, tenant: str | None, namespace: str, name: str) -> quart.Response:
        request = quart.request
        user = self._user(request.headers, request.scope)
        target = await self._target(
            user,
            tenant=tenant,
            namespace=namespace,
            name=name,
            container=request.args.get("container"),
            subresource="log",
        )
        params = {k: request.args[k] for k in _LOG_PARAMETERS if k in request.args}
        client = httpx.AsyncClient(verify=self.ssl, timeout=httpx.Timeout(30.0, read=None))
        try:
            upstream = await client.send(
                client.build_request(
                    "GET",
                    target.agent + target.path("containerLogs"),
                    params=params,
                    headers=self._headers(),
                ),
                stream=True,
            )
        except httpx.HTTPError as error:
            await client.aclose()
            raise errors.ServiceUnavailable(
                f"cannot reach the agent of pod {name} at {target.agent}: {error}"
            ) from None
        if upstream.status_code != 200:
            try:
                answer = await upstream.aread()
            finally:
                await upstream.aclose()
                await client.aclose()
            return _agent_error(upstream.status_code, answer)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            except httpx.HTTPError as error:
                logger.debug("log stream of %s/%s ended: %s", namespace, name, error)
            finally:
                await upstream.aclose()
                await client.aclose()

        response = quart.Response(
            body(), content_type="text/plain", headers={"Cache-Control": "no-cache"}
        )
        response.timeout = None
        return response

    # Exec

    async def exec_target(
        self, request: Any, *, tenant: str | None, namespace: str, name: str
    ) -> _Target:
        user = self._user(request.headers, request.scope)
        target = await self._target(
            user,
            tenant=tenant,
            namespace=namespace,
            name=name,
            container=request.args.get("container"),
            subresource="exec",
        )
        if not request.args.getlist("command"):
            raise errors.BadRequest("you must specify at least 1 command")
        return target

    async def exec(self, *, tenant: str | None, namespace: str, name: str) -> Any:
        ws = quart.websocket
        target = await self.exec_target(ws, tenant=tenant, namespace=namespace, name=name)
        subprotocol = stream.choose_subprotocol(ws.requested_subprotocols)
        if subprotocol is None:
            raise errors.BadRequest(
                f"websocket subprotocols {ws.requested_subprotocols} not supported; "
                f"use one of {list(stream.SUBPROTOCOLS)}"
            )
        query: list[tuple[str, str]] = [("command", c) for c in ws.args.getlist("command")]
        query += [(k, ws.args[k]) for k in _EXEC_PARAMETERS if k in ws.args]
        url = target.agent + target.path("exec") + "?" + urllib.parse.urlencode(query)
        try:
            async with stream.connect(
                url,
                subprotocols=[subprotocol],
                ssl_context=self.ssl,
                headers=self._headers().items(),
            ) as upstream:
                await ws.accept(subprotocol=upstream.subprotocol or subprotocol)
                await stream.relay(upstream, receive=ws.receive, send=ws.send)
        except trio_websocket.ConnectionRejected as rejected:
            return _agent_error(rejected.status_code or 502, rejected.body or b"")
        except (OSError, trio_websocket.HandshakeError) as error:
            raise errors.ServiceUnavailable(
                f"cannot reach the agent of pod {name} at {target.agent}: {error}"
            ) from None
        return None

    # TokenReview

    async def token_review(self) -> quart.Response:
        request = quart.request
        user = self._user(request.headers, request.scope)
        if user.tenant != resources.SYSTEM_TENANT or authn.MASTERS_GROUP not in user.groups:
            raise errors.Forbidden.for_resource(
                "tokenreviews",
                "",
                group="authentication.k8s.io",
                why=f'User "{user.name}" cannot create resource "tokenreviews" in API group '
                '"authentication.k8s.io" at the cluster scope',
            )
        raw = await http.raw_body(self.api.limits.max_body_bytes)
        try:
            review = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise errors.BadRequest(f"the request body is not valid JSON: {error}") from None
        spec = review.get("spec") if isinstance(review, dict) else None
        token = spec.get("token") if isinstance(spec, dict) else None
        if not isinstance(token, str) or not token:
            raise errors.BadRequest("spec.token: Required value")
        reviewed = self.api.authenticator.authenticate_token(token)
        status: Obj = {"authenticated": reviewed is not None}
        if reviewed is not None:
            status["user"] = {
                "username": reviewed.name,
                "uid": reviewed.uid,
                "groups": list(reviewed.groups),
                "extra": {TENANT_EXTRA: [reviewed.tenant]},
            }
        else:
            status["error"] = "invalid bearer token"
        body = {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return quart.Response(orjson.dumps(body), status=201, content_type="application/json")


def _resource(api: http.Api, group: str, plural: str) -> resources.Resource:
    resource = api.registry.get(group, "v1", plural)
    assert resource is not None, plural
    return resource


def _agent_error(code: int, body: bytes) -> quart.Response:
    """The agent's error answer as the client's, a `Status` either way."""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        message = body.decode("utf-8", "replace").strip() or f"the node agent answered {code}"
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "code": code,
        }
    return quart.Response(orjson.dumps(status), status=code, content_type="application/json")
