"""Lambda proxy responses mapped back to HTTP, and the gateway's own error answers.

Payload 1.0 (REST API): the function must return exactly
``{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`` (all but ``statusCode``
optional); ``headers`` and ``multiValueHeaders`` are merged, the multi-value entry winning for a
name in both. Anything else — not JSON, not an object, an unknown key (``cookies`` included), a
non-string body, a header value that is an object — is API Gateway's "Malformed Lambda proxy
response": **502** ``{"message": "Internal server error"}``.

Payload 2.0 (HTTP API): an object with ``statusCode`` is read like 1.0 plus ``cookies`` (each a
``Set-Cookie``); any other valid JSON is the body of a ``200`` with
``content-type: application/json``. A response without ``Content-Type`` gets
``application/json`` under both formats.

``statusCode`` may be a number or a string of digits (API Gateway accepts both) in 100..599.
Hop-by-hop and length headers returned by the function are dropped: the gateway frames the body.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
V2_KEYS = V1_KEYS | {"cookies"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class MalformedResponse(ValueError):
    """The function's answer is not a valid proxy response (the gateway answers 502)."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return values[-1] if values else None


def gateway_error(status: int, message: str, error_type: str | None = None) -> HttpResponse:
    """An answer the gateway makes itself: ``{"message": ...}`` as API Gateway sends it."""
    headers = [("content-type", "application/json")]
    if error_type:
        headers.append(("x-amzn-errortype", error_type))
    body = json.dumps({"message": message}, separators=(",", ":")).encode()  # as AWS sends it
    return HttpResponse(status, headers, body)


def internal_error(status: int = 502) -> HttpResponse:
    """API Gateway's ``{"message": "Internal server error"}`` (502 bad answer, 500 bad setup)."""
    return gateway_error(status, "Internal server error", "InternalServerErrorException")


def map_response(payload: bytes, payload_format_version: str) -> HttpResponse:
    """The HTTP response for a function's payload; 502 when it is malformed."""
    try:
        if payload_format_version == "2.0":
            return map_v2(payload)
        return map_v1(payload)
    except MalformedResponse:
        return internal_error()


def map_v1(payload: bytes) -> HttpResponse:
    """Payload 1.0; raises ``MalformedResponse`` for anything API Gateway would reject."""
    value = _json(payload)
    if not isinstance(value, Mapping):
        raise MalformedResponse("the response is not a JSON object")
    return _explicit(value, V1_KEYS)


def map_v2(payload: bytes) -> HttpResponse:
    """Payload 2.0: an explicit response, or any JSON value as a 200 JSON body."""
    value = _json(payload)
    if isinstance(value, Mapping) and "statusCode" in value:
        return _explicit(value, V2_KEYS)
    # the payload already is the JSON encoding of the returned value: it is the body
    return HttpResponse(200, [("content-type", "application/json")], payload.strip())


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("the response is not JSON") from None


def _explicit(value: Mapping[str, Any], allowed: frozenset[str]) -> HttpResponse:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise MalformedResponse(f"unexpected key(s) {unknown}")
    status = _status(value.get("statusCode"))
    headers = _merge(value.get("headers"), value.get("multiValueHeaders"))
    for cookie in _cookies(value.get("cookies")):
        headers.append(("set-cookie", cookie))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpResponse(status, headers, _body(value.get("body"), value.get("isBase64Encoded")))


def _status(value: object) -> int:
    if isinstance(value, bool):
        raise MalformedResponse("statusCode is a boolean")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise MalformedResponse(f"statusCode {value!r} is not an HTTP status")
    return value


def _header_value(value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise MalformedResponse(f"header value {value!r} is not a string")
    if any(c in text for c in "\r\n\0"):
        raise MalformedResponse("a header value contains a line break or NUL")
    return text


def _header_name(name: str) -> str:
    if not _TOKEN.match(name):
        raise MalformedResponse(f"{name!r} is not a header name")
    return name


def _merge(single: object, multi: object) -> list[tuple[str, str]]:
    if single is not None and not isinstance(single, Mapping):
        raise MalformedResponse("headers is not an object")
    if multi is not None and not isinstance(multi, Mapping):
        raise MalformedResponse("multiValueHeaders is not an object")
    merged: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (multi or {}).items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders.{name} is not a list")
        merged.extend((_header_name(name), _header_value(v)) for v in values)
        seen.add(str(name).lower())
    for name, value in (single or {}).items():
        if str(name).lower() not in seen:  # the multi-value entry wins for the same name
            merged.append((_header_name(name), _header_value(value)))
    return [(k, v) for k, v in merged if k.lower() not in _FRAMING]


def _cookies(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise MalformedResponse("cookies is not a list of strings")
    return value


def _body(body: object, is_base64: object) -> bytes:
    if is_base64 is not None and not isinstance(is_base64, bool):
        raise MalformedResponse("isBase64Encoded is not a boolean")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse("body is not a string")
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse("body is not valid base64") from None
