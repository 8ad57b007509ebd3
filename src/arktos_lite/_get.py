"""`arktos get`: objects as kubectl prints them, in one tenant, one namespace or all of them.

The table is the server's own (`as=Table`), so the columns are kubectl's; `-o json|yaml`
is the exact API output and `-o name` prints `kind/name`. A partitioned cluster's client
sends a tenant's request to its partition; `--all-tenants` asks every partition and
merges what they hold, sorted by tenant, namespace and name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
import yaml

from arktos_lite import client
from arktos_lite.api import resources

Obj = dict[str, Any]

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
OUTPUTS = ("", "wide", "json", "yaml", "name")
_REGISTRY = resources.Registry()


def find_resource(name: str) -> resources.Resource:
    """The resource a user means by `name`: plural, singular, short name or kind, with an
    optional `.group` (`deployments.apps`). The core group wins a tie, as in kubectl."""
    wanted, _, group = name.lower().partition(".")
    for resource in _REGISTRY:
        if group and resource.group != group:
            continue
        names = {resource.plural, resource.singular, resource.kind.lower(), *resource.short_names}
        if wanted in names:
            return resource
    raise LookupError(f'the server doesn\'t have a resource type "{name}"')


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    resource: resources.Resource
    names: tuple[str, ...] = ()
    namespace: str | None = None
    all_namespaces: bool = False
    tenant: str | None = None
    all_tenants: bool = False
    label_selector: str | None = None
    field_selector: str | None = None
    output: str = ""

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output format {self.output!r} is not one of {', '.join(OUTPUTS)}")
        if self.all_tenants and self.names:
            raise ValueError("--all-tenants lists objects; to get one by name, give its --tenant")

    @property
    def tenant_path(self) -> str | None:
        return resources.ALL_TENANTS if self.all_tenants else self.tenant

    @property
    def namespace_path(self) -> str | None:
        if not self.resource.namespaced or self.all_namespaces or self.all_tenants:
            return None
        return self.namespace or "default"

    @property
    def spans_namespaces(self) -> bool:
        return self.resource.namespaced and self.namespace_path is None


async def get(api: client.Client, query: Query) -> str:
    """What `arktos get` prints for `query`."""
    if query.output in ("json", "yaml", "name"):
        objects = await _objects(api, query)
        return _render(objects, query)
    tables = await _tables(api, query)
    return _print_table(tables, query)


async def _objects(api: client.Client, query: Query) -> list[Obj]:
    resource = query.resource
    if query.names:
        return [
            await api.get(
                resource,
                name,
                namespace=query.namespace_path,
                tenant=query.tenant_path,
            )
            for name in query.names
        ]
    listed = await api.list_all(
        resource,
        namespace=query.namespace_path,
        tenant=query.tenant_path,
        label_selector=query.label_selector,
        field_selector=query.field_selector,
    )
    return [_with_kind(item, resource) for item in _sorted(listed["items"])]


async def _tables(api: client.Client, query: Query) -> list[Obj]:
    resource = query.resource
    if query.names:
        paths = [
            api.path_of(
                resource, tenant=query.tenant_path, namespace=query.namespace_path, name=name
            )
            for name in query.names
        ]
        params: dict[str, Any] = {}
    else:
        paths = [api.path_of(resource, tenant=query.tenant_path, namespace=query.namespace_path)]
        params = {"labelSelector": query.label_selector, "fieldSelector": query.field_selector}
    tables = []
    for path in paths:
        for part in api.clients_for(path):
            table = await part.request("GET", path, params=params, headers={"Accept": TABLE})
            tables.append(table)
    return tables


def _print_table(tables: Sequence[Obj], query: Query) -> str:
    if not tables:
        return ""
    definitions = tables[0].get("columnDefinitions", [])
    shown = [
        index
        for index, column in enumerate(definitions)
        if query.output == "wide" or not column.get("priority")
    ]
    headers = [str(definitions[i]["name"]).upper() for i in shown]
    rows: list[tuple[tuple[str, str, str], list[str]]] = []
    for table in tables:
        for row in table.get("rows", []):
            meta = (row.get("object") or {}).get("metadata", {})
            key = (meta.get("tenant", ""), meta.get("namespace", ""), meta.get("name", ""))
            cells = [_cell(row["cells"][i]) for i in shown]
            if query.spans_namespaces:
                cells.insert(1 if query.all_tenants else 0, key[1])
            rows.append((key, cells))
    if query.spans_namespaces:
        headers.insert(1 if query.all_tenants else 0, "NAMESPACE")
    if not rows:
        where = "" if query.spans_namespaces else f" in {query.namespace_path} namespace"
        return f"No resources found{where}."
    rows.sort(key=lambda entry: entry[0])
    lines = [headers, *(cells for _, cells in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _render(objects: list[Obj], query: Query) -> str:
    if query.output == "name":
        kind = query.resource.kind.lower()
        if query.resource.group:
            kind = f"{kind}.{query.resource.group}"
        return "\n".join(f"{kind}/{obj['metadata']['name']}" for obj in objects)
    document: Obj
    if len(objects) == 1 and query.names:
        document = objects[0]
    else:
        document = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": objects}
    if query.output == "json":
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False).rstrip()


def _sorted(objects: list[Obj]) -> list[Obj]:
    def key(obj: Obj) -> tuple[str, str, str]:
        meta = obj.get("metadata", {})
        return (meta.get("tenant", ""), meta.get("namespace", ""), meta.get("name", ""))

    return sorted(objects, key=key)


def _with_kind(obj: Obj, resource: resources.Resource) -> Obj:
    """List items carry no kind; printed alone they need one, as kubectl adds it."""
    return {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
