"""Lambda proxy integration events, payload format 1.0 (REST API) and 2.0 (HTTP API).

``proxy_event_v1`` and ``proxy_event_v2`` build the event exactly in the shapes AWS documents
(set-up-lambda-proxy-integrations, http-api-develop-integrations-lambda), from an
``ApiRequest`` — the gateway's view of one HTTP request — and the matched route and stage.

Choices where a local gateway has to decide (each documented, none breaks the shape):

* ASGI servers deliver header names lower-cased. Payload 2.0 wants them lower-cased anyway; for
  payload 1.0 they are given in canonical ``Title-Case`` (``User-Agent``), the way HTTP/1.1
  clients send them, so handlers written against REST APIs find ``headers["User-Agent"]``.
* ``path`` (1.0) and ``rawPath`` (2.0) are the path below the API's mount point (no stage
  prefix, no ``/apis/...`` or ``/api`` base), the same under every way of addressing the API,
  like a custom domain's API mapping; ``requestContext.path`` is the path the client sent.
* A body is passed as text when its ``Content-Type`` is textual (``text/*``, JSON, XML, form
  data, JavaScript) or absent, and it is valid UTF-8; otherwise base64 with
  ``isBase64Encoded: true`` (a REST API's binaryMediaTypes ``*/*`` for everything else).
* ``X-Forwarded-For``/``-Port``/``-Proto`` are added as API Gateway adds them.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from caravan.platform.api.routing import RouteMatch

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
    "application/x-yaml",
    "application/yaml",
)
_IDENTITY_KEYS = (
    "accessKey",
    "accountId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
)


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request as the gateway received it."""

    method: str
    path: str  # below the API's mount point, still percent-encoded: "/items/a%20b"
    full_path: str  # the whole path the client sent: "/apis/demo/test/items/a%20b"
    query_string: str = ""  # raw, without "?"
    headers: list[tuple[str, str]] = field(default_factory=list)  # names lower-cased
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    scheme: str = "http"
    port: int = 80
    host: str = "localhost"
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    request_id: str = ""

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), if present."""
        name = name.lower()
        values = [v for k, v in self.headers if k == name]
        return values[-1] if values else None


@dataclass(frozen=True)
class StageContext:
    """What the stage contributes to the event."""

    api_id: str
    stage: str
    variables: dict[str, str]
    account_id: str = "123456789012"


def request_time(moment: datetime) -> str:
    """API Gateway's ``requestTime``: ``04/Mar/2020:19:15:17 +0000`` (English, UTC)."""
    moment = moment.astimezone(UTC)
    month = _MONTHS[moment.month - 1]
    return f"{moment.day:02d}/{month}/{moment.year}:{moment:%H:%M:%S} +0000"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def encode_body(request: ApiRequest) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): text for textual UTF-8 bodies, base64 otherwise; None if empty."""
    if not request.body:
        return None, False
    if is_textual(request.header("content-type")):
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode("ascii"), True


def is_textual(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media in _TEXT_TYPES
        or media.endswith(("+json", "+xml"))
        or not media
    )


def proxy_event_v1(request: ApiRequest, match: RouteMatch, stage: StageContext) -> dict[str, Any]:
    """The REST API (payload 1.0) Lambda proxy event."""
    headers = _forwarded(request)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        key = _title_case(name)
        single[key] = value  # the last value wins, as on API Gateway
        multi.setdefault(key, []).append(value)
    query = parse_qsl(request.query_string, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    body, is_base64 = encode_body(request)
    resource = match.route.path
    return {
        "resource": resource,
        "path": unquote(request.path),
        "httpMethod": request.method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": stage.account_id,
            "apiId": stage.api_id,
            "authorizer": {"claims": None, "scopes": None},
            "domainName": request.host,
            "domainPrefix": request.host.split(".", 1)[0],
            "extendedRequestId": extended_request_id(request.request_id),
            "httpMethod": request.method,
            "identity": {
                **dict.fromkeys(_IDENTITY_KEYS),
                "sourceIp": request.source_ip,
                "user": None,
                "userAgent": request.header("user-agent"),
                "userArn": None,
                "clientCert": None,
            },
            "path": request.full_path,
            "protocol": request.protocol,
            "requestId": request.request_id,
            "requestTime": request_time(request.time),
            "requestTimeEpoch": epoch_ms(request.time),
            "resourceId": resource_id(stage.api_id, resource),
            "resourcePath": resource,
            "stage": stage.stage,
        },
        "pathParameters": match.path_parameters or None,
        "stageVariables": dict(stage.variables) or None,
        "body": body,
        "isBase64Encoded": is_base64,
    }


def proxy_event_v2(request: ApiRequest, match: RouteMatch, stage: StageContext) -> dict[str, Any]:
    """The HTTP API (payload 2.0) Lambda proxy event; absent parts are left out, as AWS does."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in _forwarded(request):
        if name == "cookie":  # payload 2.0 moves cookies out of the headers
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    body, is_base64 = encode_body(request)
    route_key = match.route.route_key
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": stage.account_id,
        "apiId": stage.api_id,
        "domainName": request.host,
        "domainPrefix": request.host.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.header("user-agent") or "",
        },
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": stage.stage,
        "time": request_time(request.time),
        "timeEpoch": epoch_ms(request.time),
    }
    if body is not None:
        event["body"] = body
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["isBase64Encoded"] = is_base64
    if stage.variables:
        event["stageVariables"] = dict(stage.variables)
    return event


def extended_request_id(request_id: str) -> str:
    """A stable ``extendedRequestId`` in API Gateway's style (16 base64 characters)."""
    digest = hashlib.sha256(request_id.encode()).digest()[:11]
    return base64.b64encode(digest).decode("ascii")[:15] + "="


def resource_id(api_id: str, resource: str) -> str:
    """A stable 6-character id per resource path, like API Gateway's ``resourceId``."""
    return hashlib.sha256(f"{api_id} {resource}".encode()).hexdigest()[:6]


def _forwarded(request: ApiRequest) -> list[tuple[str, str]]:
    """The request's headers plus the X-Forwarded-* ones API Gateway adds."""
    headers = [(k, v) for k, v in request.headers if not k.startswith("x-forwarded-")]
    prior = request.header("x-forwarded-for")
    chain = f"{prior}, {request.source_ip}" if prior else request.source_ip
    headers += [
        ("x-forwarded-for", chain),
        ("x-forwarded-port", str(request.port)),
        ("x-forwarded-proto", request.scheme),
    ]
    return headers


def _title_case(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
