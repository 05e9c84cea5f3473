"""Which route of a deployed API answers one request, and the path parameters it binds.

Routes are tried most specific first (``ApiDefinition.routes`` is sorted that way): literal
segments before ``{param}`` before greedy ``{param+}``, a method route before ``ANY``, and the
HTTP API's ``$default`` last. ``{param}`` binds one non-empty segment; ``{param+}`` binds one or
more (so ``/{proxy+}`` does not match ``/``, as on API Gateway). Parameter values are
percent-decoded; a trailing slash is ignored when matching.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from caravan.platform.api.openapi import DEFAULT_ROUTE, ApiDefinition, Route, Segment


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def match_route(definition: ApiDefinition, method: str, raw_path: str) -> RouteMatch | None:
    """The route answering ``method`` on ``raw_path`` (still percent-encoded), if any."""
    parts = _split(raw_path)
    method = method.upper()
    for route in definition.routes:
        if route.method not in (method, "ANY"):
            continue
        if route.path == DEFAULT_ROUTE:
            return RouteMatch(route, {})
        params = _bind(route.segments, parts)
        if params is not None:
            return RouteMatch(route, params)
    return None


def allowed_methods(definition: ApiDefinition, raw_path: str) -> set[str]:
    """The methods some route accepts on ``raw_path`` (``ANY`` included as such)."""
    parts = _split(raw_path)
    return {
        route.method
        for route in definition.routes
        if route.path == DEFAULT_ROUTE or _bind(route.segments, parts) is not None
    }


def _split(raw_path: str) -> list[str]:
    trimmed = raw_path.strip("/")
    return trimmed.split("/") if trimmed else []


def _bind(segments: tuple[Segment, ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, segment in enumerate(segments):
        if segment.greedy:
            rest = parts[index:]
            if not rest or not all(rest):
                return None
            params[segment.param or ""] = unquote("/".join(rest))
            return params
        if index >= len(parts) or not parts[index]:
            return None
        if segment.param:
            params[segment.param] = unquote(parts[index])
        elif unquote(parts[index]) != segment.text:
            return None
    return params if len(parts) == len(segments) else None
