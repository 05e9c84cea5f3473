"""V1 webhooks: PutWebhook, ListWebhooks, DeleteWebhook, RegisterWebhookWithThirdParty,
DeregisterWebhookWithThirdParty.

A webhook is a document of kind "webhook" named by the webhook: the WebhookDefinition's keys
(name, targetPipeline, targetAction, filters, authentication, authenticationConfiguration) plus
"url" (``<public_url>/webhooks/v1/<name>``), "arn", "tags" and, once a delivery arrived,
"lastTriggered" (and "errorCode"/"errorMessage" if it was refused). The route receiving the
deliveries reads it with ``find_webhook`` and reports each with ``webhook_triggered``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from caravan.engine.core import EngineCore
from caravan.engine.fields import obj, paged, text
from caravan.engine.ops_tags import LimitExceededError, valid_tags
from caravan.errors import InvalidInputError, NotFoundError

MAX_WEBHOOKS = 300


class WebhookNotFoundError(NotFoundError):
    reference = "webhook-not-found"
    aws_type = "WebhookNotFoundException"


class InvalidWebhookFilterPatternError(InvalidInputError):
    reference = "invalid-webhook-filter"
    aws_type = "InvalidWebhookFilterPatternException"


class InvalidWebhookAuthenticationError(InvalidInputError):
    reference = "invalid-webhook-authentication"
    aws_type = "InvalidWebhookAuthenticationParametersException"


_DEFINITION_KEYS = (
    "name",
    "targetPipeline",
    "targetAction",
    "filters",
    "authentication",
    "authenticationConfiguration",
)


def _webhook_definition(body: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = {k: text(body, k, name=True) for k in _DEFINITION_KEYS[:3]}
    filters = body.get("filters")
    if not isinstance(filters, list) or len(filters) > 5:
        raise InvalidWebhookFilterPatternError("webhook.filters must be a list of at most 5 rules")
    rules = []
    for i, rule in enumerate(filters):
        path = rule.get("jsonPath") if isinstance(rule, dict) else None
        if not isinstance(path, str) or not 1 <= len(path) <= 150 or not path.startswith("$"):
            raise InvalidWebhookFilterPatternError(
                f"webhook.filters[{i}].jsonPath must be a JsonPath of 1 to 150 characters "
                "starting with $ (e.g. $.ref)"
            )
        item = {"jsonPath": path}
        match = rule.get("matchEquals")
        if match is not None:
            if not isinstance(match, str) or not 1 <= len(match) <= 150:
                raise InvalidWebhookFilterPatternError(
                    f"webhook.filters[{i}].matchEquals must be 1 to 150 characters"
                )
            item["matchEquals"] = match
        rules.append(item)
    definition["filters"] = rules
    definition["authentication"], definition["authenticationConfiguration"] = _authentication(body)
    return definition


def _authentication(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    kind = body.get("authentication")
    config = body.get("authenticationConfiguration")
    if not isinstance(config, dict):
        raise InvalidWebhookAuthenticationError("webhook.authenticationConfiguration is required")
    if kind == "GITHUB_HMAC":
        token = config.get("SecretToken")
        if not isinstance(token, str) or not 1 <= len(token) <= 100:
            raise InvalidWebhookAuthenticationError(
                "GITHUB_HMAC authentication needs authenticationConfiguration.SecretToken "
                "(1 to 100 characters)"
            )
        return kind, {"SecretToken": token}
    if kind == "IP":
        cidr = config.get("AllowedIPRange")
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise InvalidWebhookAuthenticationError(
                f"IP authentication needs authenticationConfiguration.AllowedIPRange as a CIDR "
                f"range (e.g. 10.0.0.0/8), got {cidr!r}"
            ) from None
        return kind, {"AllowedIPRange": str(cidr)}
    if kind == "UNAUTHENTICATED":
        return kind, {}
    raise InvalidWebhookAuthenticationError(
        f"webhook.authentication {kind!r} must be GITHUB_HMAC, IP or UNAUTHENTICATED"
    )


def _webhook_item(doc: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "definition": {k: doc[k] for k in _DEFINITION_KEYS},
        "url": doc["url"],
        "arn": doc["arn"],
    }
    for key in ("lastTriggered", "errorMessage", "errorCode"):
        if doc.get(key) is not None:
            item[key] = doc[key]
    if doc.get("tags"):
        item["tags"] = doc["tags"]
    return item


def find_webhook(core: EngineCore, name: str) -> dict[str, Any] | None:
    """The stored webhook named ``name`` (its WebhookDefinition keys plus url, arn, tags,
    lastTriggered), for the route that receives V1 webhook deliveries."""
    with core.read() as tx:
        return tx.pipelines.get_document("webhook", name)


async def webhook_triggered(
    core: EngineCore, name: str, *, error_code: str | None = None, error_message: str | None = None
) -> None:
    """Record a delivery to webhook ``name`` (lastTriggered, and the error if it was refused)."""
    async with core.mutate("webhooks") as (tx, _ch):
        doc = tx.pipelines.get_document("webhook", name)
        if doc is None:
            return
        doc.update(lastTriggered=core.clock(), errorCode=error_code, errorMessage=error_message)
        tx.pipelines.put_document("webhook", name, doc, core.clock())


async def put_webhook(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    definition = _webhook_definition(obj(request, "webhook"))
    name, pipeline = definition["name"], definition["targetPipeline"]
    tags = valid_tags(request["tags"]) if "tags" in request else None
    with core.read() as tx:
        sources = [
            a.name for a in core.declarations.get(tx, pipeline).declaration.stages[0].actions
        ]
    if definition["targetAction"] not in sources:
        raise InvalidInputError(
            f"webhook.targetAction {definition['targetAction']!r} is not a source action of "
            f"pipeline {pipeline!r} (its source actions: {', '.join(sources)})"
        )
    region, account = core.settings.region, core.settings.account_id
    async with core.mutate("webhooks") as (tx, _ch):
        existing = tx.pipelines.get_document("webhook", name)
        if existing is None and len(tx.pipelines.list_documents("webhook")) >= MAX_WEBHOOKS:
            raise LimitExceededError(f"there are already {MAX_WEBHOOKS} webhooks; delete one first")
        doc = {**(existing or {}), **definition}
        doc["url"] = f"{core.settings.public_url.rstrip('/')}/webhooks/v1/{name}"
        doc["arn"] = f"arn:aws:codepipeline:{region}:{account}:webhook:{name}"
        doc["tags"] = tags if tags is not None else doc.get("tags") or []
        tx.pipelines.put_document("webhook", name, doc, core.clock())
    return {"webhook": _webhook_item(doc)}


async def list_webhooks(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    with core.read() as tx:
        items = [_webhook_item(d) for d in tx.pipelines.list_documents("webhook")]
    return paged("webhooks", items, request, capitalised=True)


async def delete_webhook(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = text(request, "name", name=True)
    async with core.mutate("webhooks") as (tx, _ch):
        tx.pipelines.delete_document("webhook", name)  # like AWS: deleting twice is no error
    return {}


async def webhook_with_third_party(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """Register/DeregisterWebhookWithThirdParty: nothing to tell a third party locally (the
    repository host is configured by hand); the webhook must exist."""
    name = text(request, "webhookName", name=True)
    if find_webhook(core, name) is None:
        raise WebhookNotFoundError(f"there is no webhook {name!r}")
    return {}
