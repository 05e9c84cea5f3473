"""CORS as an HTTP API declares it (``x-amazon-apigateway-cors``), and the headers it implies.

The configuration keys are the HTTP API's: ``allowOrigins``, ``allowMethods``, ``allowHeaders``,
``exposeHeaders``, ``maxAge``, ``allowCredentials``. As on an HTTP API with CORS configured:

* a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered by
  the gateway itself with ``204`` — whether or not an ``OPTIONS`` route exists — carrying the
  allow headers when the origin is allowed, and none when it is not;
* every other response to an allowed origin gets ``Access-Control-Allow-Origin`` (and
  ``-Expose-Headers`` / ``-Allow-Credentials``); CORS headers the function returned are
  replaced, because the gateway's configuration is the one source of truth.

Origins match exactly (case-insensitive), by ``*``, or by a wildcard subdomain such as
``https://*.example.com``. ``allowCredentials`` with a ``*`` origin is refused at load time, as
API Gateway refuses it (browsers would reject the answers anyway).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from caravan.errors import Issue

Headers = list[tuple[str, str]]
_KEYS = {"allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge"}
_CORS_PREFIX = "access-control-"


@dataclass(frozen=True)
class CorsConfig:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allowed_origin(self, origin: str) -> str | None:
        """The value of ``Access-Control-Allow-Origin`` for ``origin``, or None if refused."""
        for allowed in self.allow_origins:
            if allowed == "*":
                return origin if self.allow_credentials else "*"
            if _origin_matches(allowed, origin):
                return origin
        return None

    def preflight_headers(self, origin: str, method: str, request_headers: str) -> Headers:
        """The headers of the gateway's answer to a preflight (empty when refused)."""
        allow_origin = self.allowed_origin(origin)
        if allow_origin is None:
            return []
        methods = [m.upper() for m in self.allow_methods]
        if "*" not in methods and method.upper() not in methods:
            return []
        headers = [("access-control-allow-origin", allow_origin)]
        headers.append(
            ("access-control-allow-methods", method if "*" in methods else ",".join(methods))
        )
        allowed_headers = list(self.allow_headers)
        if "*" in allowed_headers:
            allowed_headers = [request_headers] if request_headers else []
        if allowed_headers:
            headers.append(("access-control-allow-headers", ",".join(allowed_headers)))
        if self.max_age is not None:
            headers.append(("access-control-max-age", str(self.max_age)))
        headers.extend(self._common())
        return headers

    def response_headers(self, origin: str | None) -> Headers:
        """The CORS headers added to an ordinary response to a request from ``origin``."""
        allow_origin = self.allowed_origin(origin) if origin else None
        if allow_origin is None:
            return []
        headers = [("access-control-allow-origin", allow_origin)]
        if self.expose_headers:
            headers.append(("access-control-expose-headers", ",".join(self.expose_headers)))
        return headers + self._common()

    def _common(self) -> Headers:
        headers = [("vary", "Origin")]
        if self.allow_credentials:
            headers.append(("access-control-allow-credentials", "true"))
        return headers


def without_cors(headers: Headers) -> Headers:
    """``headers`` minus any CORS header (the gateway's configuration replaces them)."""
    return [(k, v) for k, v in headers if not k.lower().startswith(_CORS_PREFIX)]


def _origin_matches(pattern: str, origin: str) -> bool:
    pattern, origin = pattern.lower(), origin.lower()
    if "*" not in pattern:
        return pattern == origin
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, origin) is not None


def parse_cors(value: object, where: str, issues: list[Issue]) -> CorsConfig | None:
    """The CORS configuration at ``where``, or None after adding its problems to ``issues``."""
    if not isinstance(value, Mapping):
        issues.append(Issue(where, "must be a mapping"))
        return None
    count = len(issues)
    for key in value:
        if key not in _KEYS and key != "allowCredentials":
            issues.append(Issue(f"{where}.{key}", "unknown CORS setting"))
    lists = {
        key: _strings(value.get(key), f"{where}.{key}", issues)
        for key in sorted(_KEYS - {"maxAge"})
    }
    max_age = value.get("maxAge")
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < -1
    ):
        issues.append(Issue(f"{where}.maxAge", f"{max_age!r} is not a number of seconds"))
    credentials = value.get("allowCredentials", False)
    if not isinstance(credentials, bool):
        issues.append(Issue(f"{where}.allowCredentials", "must be true or false"))
    elif credentials and "*" in lists["allowOrigins"]:
        issues.append(Issue(f"{where}.allowOrigins", "'*' cannot be used with allowCredentials"))
    if len(issues) > count:
        return None
    return CorsConfig(
        allow_origins=lists["allowOrigins"],
        allow_methods=lists["allowMethods"],
        allow_headers=lists["allowHeaders"],
        expose_headers=lists["exposeHeaders"],
        max_age=max_age if isinstance(max_age, int) else None,
        allow_credentials=bool(credentials),
    )


def _strings(value: object, where: str, issues: list[Issue]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        issues.append(Issue(where, "must be a list of strings"))
        return ()
    return tuple(value)
