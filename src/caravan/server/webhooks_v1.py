"""The receiving end of CodePipeline's V1 webhooks (PutWebhook): ``POST /webhooks/v1/{name}``.

A delivery is authenticated as the webhook's definition says — ``GITHUB_HMAC`` (GitHub's
``X-Hub-Signature-256``, or the older SHA-1 ``X-Hub-Signature``, with the definition's
``SecretToken``), ``IP`` (the sender's address in ``AllowedIPRange``) or ``UNAUTHENTICATED`` —
then every filter must hold: the JSONPath of the body (the ``$.a.b[0]['c']`` subset) equals
``matchEquals``, whose ``{Name}`` placeholders are the target action's configuration values
(``refs/heads/{Branch}``). A delivery that passes starts the target pipeline (trigger
``Webhook``); every delivery, refused or not, is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from caravan.errors import CaravanError
from caravan.server.native import engine_of
from caravan.server.webhooks import MAX_WEBHOOK_BYTES, Rejected, read_body, state_of

_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_\-]+)\}")


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` ($.a.b[0]['c']), or None when it is not there."""
    if not path.startswith("$"):
        return None
    position, value = 1, document
    while position < len(path):
        step = _STEP.match(path, position)
        if step is None:
            return None
        key, index, quoted = step.groups()
        position = step.end()
        if index is not None:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
        else:
            value = value.get(key or quoted) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def authenticate(definition: dict[str, Any], request: Request, body: bytes) -> None:
    """Raise Rejected (401) unless the delivery passes the webhook's authentication."""
    kind = definition.get("authentication")
    config = definition.get("authenticationConfiguration") or {}
    if kind == "UNAUTHENTICATED":
        return
    if kind == "IP":
        sender = request.client.host if request.client else ""
        try:
            allowed = ipaddress.ip_address(sender) in ipaddress.ip_network(
                config.get("AllowedIPRange", ""), strict=False
            )
        except ValueError:
            allowed = False
        if not allowed:
            raise Rejected(f"sender {sender or 'unknown'} is outside AllowedIPRange", 401)
        return
    secret = str(config.get("SecretToken", "")).encode()
    for header, algorithm in (
        ("x-hub-signature-256", hashlib.sha256),
        ("x-hub-signature", hashlib.sha1),
    ):
        given = request.headers.get(header)
        if given:
            prefix = "sha256=" if algorithm is hashlib.sha256 else "sha1="
            expected = prefix + hmac.new(secret, body, algorithm).hexdigest()
            if hmac.compare_digest(expected.encode(), given.strip().encode("latin-1")):
                return
            raise Rejected(f"{header} does not match the body signed with the SecretToken", 401)
    raise Rejected("the delivery is unsigned (no X-Hub-Signature-256 header)", 401)


def unmet_filter(
    definition: dict[str, Any], payload: Any, configuration: dict[str, str]
) -> str | None:
    """The first filter the payload does not meet, described; None when all hold."""
    for rule in definition.get("filters") or []:
        wanted = _PLACEHOLDER.sub(
            lambda m: configuration.get(m.group(1), m.group(0)), str(rule.get("matchEquals", ""))
        )
        found = json_path(payload, str(rule.get("jsonPath", "")))
        if found is None or str(found) != wanted:
            return f"{rule.get('jsonPath')} is {found!r}, not {wanted!r}"
    return None


async def _webhook(engine: Any, name: str) -> dict[str, Any]:
    token: str | None = None
    while True:
        page = await engine.call("ListWebhooks", {"NextToken": token} if token else {})
        for item in page.get("webhooks", []):
            if item.get("definition", {}).get("name") == name:
                return dict(item["definition"])
        token = page.get("NextToken")
        if not token:
            raise Rejected(f"no webhook named {name!r}", 404)


async def _target_configuration(engine: Any, definition: dict[str, Any]) -> dict[str, str]:
    pipeline = (await engine.call("GetPipeline", {"name": definition["targetPipeline"]}))[
        "pipeline"
    ]
    for stage in pipeline["stages"]:
        for action in stage["actions"]:
            if action["name"] == definition.get("targetAction"):
                return dict(action.get("configuration") or {})
    return {}


async def _record(engine: Any, name: str, error: CaravanError | None) -> None:
    core = getattr(engine, "core", None)
    if core is None:
        return
    from caravan.engine.ops_webhooks import webhook_triggered

    if error is None:
        await webhook_triggered(core, name)
    else:
        await webhook_triggered(core, name, error_code=error.reference, error_message=error.message)


async def v1_webhook(request: Request) -> Response:
    name = request.path_params["name"]
    engine, state = engine_of(request), state_of(request)
    delivery = request.headers.get("x-github-delivery")
    try:
        definition = await _webhook(engine, name)
        body = await read_body(request, MAX_WEBHOOK_BYTES)
        authenticate(definition, request, body)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise Rejected("the body is not JSON", 400) from None
        unmet = unmet_filter(definition, payload, await _target_configuration(engine, definition))
        if unmet is not None:
            state.record("webhook-v1", name, delivery, "ignored", unmet)
            await _record(engine, name, None)
            return JSONResponse({"started": False, "reason": f"filter not met: {unmet}"})
        started = await engine.call(
            "StartPipelineExecution",
            {
                "name": definition["targetPipeline"],
                "trigger": {"triggerType": "Webhook", "triggerDetail": f"webhook {name}"},
            },
        )
    except CaravanError as error:
        state.record("webhook-v1", name, delivery, "rejected", error.message)
        if error.http_status != 404:
            await _record(engine, name, error)
        return JSONResponse({"message": error.message}, status_code=error.http_status)
    state.record(
        "webhook-v1", name, delivery, "accepted", "started", [started["pipelineExecutionId"]]
    )
    await _record(engine, name, None)
    return JSONResponse({"started": True, **started})


routes = [Route("/webhooks/v1/{name}", v1_webhook, methods=["POST"])]
