"""`/api/v1/datapartitionconfigs`: the API server's own data partition, read-only.

Every API server answers `GET /api/v1/datapartitionconfigs` with a `DataPartitionConfigList`
holding the one `DataPartitionConfig` of its partition (`Partition.data_partition_config()`:
`serviceGroupId`, `rangeStart`, `isRangeStartValid`, `rangeEnd`, `isRangeEndValid`), or no
item when it serves every tenant; `GET …/datapartitionconfigs/{name}` answers that object or
404. Tables (`kubectl get datapartitionconfigs`) show NAME, RANGE START, RANGE END and
SERVICE GROUP. Nothing is stored: writes, watches and anything but GET are 405
`MethodNotAllowed`. Like the other cluster-scoped resources, only system users may read it.
"""

from __future__ import annotations

import quart
from quart_trio import QuartTrio

from arktos_lite.api import (
    _errors as errors,
    _partitions as partitions,
    _resources as resources,
)
from arktos_lite.apiserver import _http as http

RESOURCE = partitions.DATA_PARTITION_CONFIGS
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_COLLECTION = "/api/v1/datapartitionconfigs"


def install(app: QuartTrio, api: http.Api, partition: partitions.Partition | None) -> None:
    """Add the `datapartitionconfigs` routes, describing `partition`, to the app."""
    served = DataPartitionConfigs(partition)

    async def collection() -> quart.Response:
        await _authorize(api, "watch" if http.flag(quart.request.args.get("watch")) else "list")
        return served.list()

    async def item(name: str) -> quart.Response:
        await _authorize(api, "get", name)
        return served.get(name)

    app.add_url_rule(
        _COLLECTION, view_func=collection, methods=_METHODS, endpoint="datapartitionconfigs"
    )
    app.add_url_rule(
        _COLLECTION + "/<name>",
        view_func=item,
        methods=_METHODS,
        endpoint="datapartitionconfigs-item",
    )


async def _authorize(api: http.Api, verb: str, name: str = "") -> None:
    user = await http.authenticate(api)
    method = quart.request.method
    if method != "GET" or verb == "watch":
        raise errors.MethodNotAllowed(
            f"the server does not allow this method on the requested resource ({method}"
            f"{' watch' if verb == 'watch' else ''}): datapartitionconfigs are read-only"
        )
    if user.tenant != resources.SYSTEM_TENANT:
        raise errors.Forbidden.for_resource(
            RESOURCE.plural,
            name,
            why=f'User "{user.name}" cannot {verb} resource "{RESOURCE.plural}" in API group ""',
        )


class DataPartitionConfigs:
    """The answers of the `datapartitionconfigs` routes, for one server's partition."""

    def __init__(self, partition: partitions.Partition | None) -> None:
        self.items = [] if partition is None else [partition.data_partition_config()]

    def list(self) -> quart.Response:
        if http.wants_table():
            from arktos_lite.apiserver import _tables as tables

            return http.json_response(
                tables.table(
                    RESOURCE,
                    self.items,
                    include_object=quart.request.args.get("includeObject", "Metadata"),
                )
            )
        return http.encode(
            {
                "kind": RESOURCE.list_kind,
                "apiVersion": RESOURCE.api_version,
                "metadata": {"resourceVersion": ""},
                "items": self.items,
            }
        )

    def get(self, name: str) -> quart.Response:
        for obj in self.items:
            if obj["metadata"]["name"] == name:
                if http.wants_table():
                    from arktos_lite.apiserver import _tables as tables

                    return http.json_response(
                        tables.table(
                            RESOURCE,
                            [obj],
                            include_object=quart.request.args.get("includeObject", "Metadata"),
                        )
                    )
                return http.encode(obj)
        raise errors.NotFound.for_resource(RESOURCE.plural, name)
