"""The alias operations of the Lambda API: CreateAlias (201), GetAlias, UpdateAlias (with
RoutingConfig and the RevisionId compare-and-swap), DeleteAlias (204) and ListAliases (paged).

The registry holds Lambda's alias rules (name, versions, weights, RevisionId); this module maps
the wire onto it. An UpdateAlias without RoutingConfig keeps the routing; one with an empty
AdditionalVersionWeights clears it, as on Lambda.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from caravan.server.lambda_api import paging
from caravan.server.lambda_api.requests import Call, Fields, json_reply


async def create_alias(call: Call) -> Response:
    body = await call.fields("CreateAlias")
    alias = await call.run(
        call.registry.create_alias,
        call.params["FunctionName"],
        body.required_string("Name"),
        body.required_string("FunctionVersion"),
        description=body.string("Description") or "",
        routing_config=_routing(body),
    )
    return json_reply(alias, 201)


async def get_alias(call: Call) -> Response:
    name, alias = call.params["FunctionName"], call.params["Name"]
    return json_reply(await call.run(call.registry.get_alias, name, alias))


async def update_alias(call: Call) -> Response:
    body = await call.fields("UpdateAlias")
    alias = await call.run(
        call.registry.update_alias,
        call.params["FunctionName"],
        call.params["Name"],
        function_version=body.string("FunctionVersion"),
        description=body.string("Description"),
        routing_config=_routing(body),
        revision_id=body.string("RevisionId"),
    )
    return json_reply(alias)


async def delete_alias(call: Call) -> Response:
    name, alias = call.params["FunctionName"], call.params["Name"]
    await call.run(call.registry.delete_alias, name, alias)
    return Response(status_code=204)


async def list_aliases(call: Call) -> Response:
    aliases = await call.run(
        call.registry.list_aliases,
        call.params["FunctionName"],
        function_version=call.query.get("FunctionVersion"),
    )
    chosen, marker = paging.page(aliases, lambda a: (a["Name"],), call.query)
    return json_reply(paging.listing("Aliases", chosen, marker))


def _routing(body: Fields) -> Mapping[str, Any] | None:
    """RoutingConfig as the registry takes it; None when the request leaves it out."""
    routing = body.struct("RoutingConfig")
    if routing is None:
        return None
    weights = routing.struct("AdditionalVersionWeights")
    return {"AdditionalVersionWeights": {} if weights is None else dict(weights.data)}
