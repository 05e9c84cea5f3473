"""API definitions: an OpenAPI 3 or Swagger 2 document with API Gateway's extensions, parsed.

``load_definition`` reads the document (JSON or YAML text, bytes, a file or a parsed mapping) and
returns an ``ApiDefinition``: its routes, each an HTTP method (or ``ANY``) on a path template
bound to one Lambda proxy integration, and the API's CORS settings. Every problem is reported at
once, each at its field path (``paths./data.get.x-amazon-apigateway-integration.uri``).

Supported, as API Gateway imports them:

* operations ``get``, ``put``, ``post``, ``delete``, ``options``, ``head``, ``patch`` and
  ``x-amazon-apigateway-any-method``; paths ``/``, ``/a/{id}``, greedy ``/{proxy+}`` (last
  segment only) and the HTTP API's catch-all ``$default``;
* ``x-amazon-apigateway-integration`` of type ``aws_proxy`` only, ``httpMethod: POST``, a
  ``uri`` naming the function (the ``arn:aws:apigateway:...:lambda:path/2015-03-31/functions/
  <function ARN>/invocations`` form, a function ARN, ``name`` or ``name:qualifier``) in which
  ``${stageVariables.x}`` may appear anywhere, ``payloadFormatVersion`` (``1.0`` default or
  ``2.0``) and ``timeoutInMillis`` (50 ms up to 15 minutes: beyond API Gateway's 29/30 s cap,
  up to Lambda's own limit);
* ``x-amazon-apigateway-cors`` at the document root (the HTTP API's CORS configuration).

An API whose integrations use payload 2.0 behaves as an HTTP API (``kind == "HTTP"``), otherwise
as a REST API; the two differ in how unmatched requests are answered (gateway.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from caravan.errors import InvalidInputError, Issue
from caravan.platform.api.cors import CorsConfig, parse_cors

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
CORS = "x-amazon-apigateway-cors"
DEFAULT_ROUTE = "$default"
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 50, 900_000
DEFAULT_TIMEOUT_MS = {"1.0": 29_000, "2.0": 30_000}  # REST and HTTP API defaults

_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([^}]*)\}")
_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_APIGATEWAY_URI = re.compile(
    r"^arn:aws[a-zA-Z-]*:apigateway:[^:]+:lambda:path/2015-03-31/functions/(?P<fn>.+)/invocations$"
)
_LAMBDA_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[^:]+:[^:]+:function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,140}$")
_QUALIFIER = re.compile(r"^(\$LATEST|[0-9]+|[A-Za-z0-9_-]{1,128})$")
_SEGMENT_PARAM = re.compile(r"^\{([A-Za-z0-9_.-]+)(\+?)\}$")

PayloadVersion = Literal["1.0", "2.0"]


class ApiDefinitionError(InvalidInputError):
    """An API definition breaks one or more rules; every one is listed with its field path."""

    reference = "invalid-api-definition"
    aws_type = "BadRequestException"

    def __init__(self, issues: list[Issue], *, source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        where = f" in {source}" if source else ""
        noun = "problem" if len(issues) == 1 else "problems"
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"API definition{where} has {len(issues)} {noun}:\n{lines}")

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["issues"] = [{"path": i.path, "rule": i.rule} for i in self.issues]
        return body


@dataclass(frozen=True)
class Integration:
    """A Lambda proxy integration; ``uri`` may still hold ``${stageVariables.x}``."""

    uri: str
    payload_format_version: PayloadVersion = "1.0"
    timeout_ms: int = 29_000

    @property
    def stage_variables(self) -> frozenset[str]:
        """The stage variables the uri refers to (each stage must define them)."""
        return frozenset(_STAGE_VARIABLE.findall(self.uri))

    def target(self, variables: Mapping[str, str]) -> tuple[str, str | None]:
        """(function name, qualifier or None) once the stage's variables are substituted."""
        uri = _STAGE_VARIABLE.sub(lambda m: variables.get(m.group(1), ""), self.uri)
        return parse_function_uri(uri)


@dataclass(frozen=True)
class Segment:
    """One path segment: a literal, a ``{param}`` or a greedy ``{param+}``."""

    text: str
    param: str | None = None
    greedy: bool = False

    @property
    def rank(self) -> int:
        """Specificity for route precedence: literal before parameter before greedy."""
        return 2 if self.greedy else 1 if self.param else 0


@dataclass(frozen=True)
class Route:
    """``method`` (upper case, or ``ANY``) on ``path`` (a template such as ``/items/{id}``)."""

    method: str
    path: str
    integration: Integration
    segments: tuple[Segment, ...] = field(default=(), compare=False)

    @property
    def route_key(self) -> str:
        """The HTTP API's routeKey: ``GET /items/{id}``, ``ANY /{proxy+}`` or ``$default``."""
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    def precedence(self) -> tuple[object, ...]:
        """Sort key: the most specific route first, as API Gateway chooses."""
        catch_all = self.path == DEFAULT_ROUTE
        ranks = tuple(segment.rank for segment in self.segments)
        return (catch_all, ranks, -len(self.segments), self.method == "ANY", self.path)


@dataclass(frozen=True)
class ApiDefinition:
    """A parsed API: its routes (most specific first) and CORS settings."""

    title: str
    routes: tuple[Route, ...]
    cors: CorsConfig | None = None
    source: str | None = None

    @property
    def kind(self) -> Literal["REST", "HTTP"]:
        """``HTTP`` when any integration uses payload 2.0; a REST API otherwise."""
        versions = {route.integration.payload_format_version for route in self.routes}
        return "HTTP" if "2.0" in versions else "REST"

    @property
    def stage_variables(self) -> frozenset[str]:
        """Every stage variable some integration refers to."""
        names: set[str] = set()
        for route in self.routes:
            names |= route.integration.stage_variables
        return frozenset(names)


def parse_function_uri(uri: str) -> tuple[str, str | None]:
    """The function name and qualifier an integration uri (already substituted) names."""
    match = _APIGATEWAY_URI.match(uri)
    function = match["fn"] if match else uri
    arn = _LAMBDA_ARN.match(function)
    if arn:
        name, qualifier = arn["name"], arn["qualifier"]
    elif function.startswith("arn:"):
        raise ValueError(f"{function!r} is not a Lambda function ARN")
    else:
        name, sep, rest = function.partition(":")
        qualifier = rest if sep else None
    if not _FUNCTION_NAME.match(name):
        raise ValueError(f"{name!r} is not a function name (letters, digits, - and _)")
    if qualifier is not None and not _QUALIFIER.match(qualifier):
        raise ValueError(f"{qualifier!r} is not a version or alias name")
    return name, qualifier


def load_definition(
    document: str | bytes | Path | Mapping[str, Any], *, source: str | None = None
) -> ApiDefinition:
    """Parse an OpenAPI 3 / Swagger 2 document; raise ``ApiDefinitionError`` listing problems."""
    if isinstance(document, Path):
        source = source or str(document)
        try:
            document = document.read_bytes()
        except OSError as exc:
            issue = Issue("", f"cannot read the file: {exc.strerror or exc}")
            raise ApiDefinitionError([issue], source=source) from None
    data = _decode(document, source) if isinstance(document, str | bytes) else document
    issues: list[Issue] = []
    definition = _parse(data, issues, source)
    if issues:
        raise ApiDefinitionError(issues, source=source)
    return definition


def _decode(text: str | bytes, source: str | None) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON: one parser reads both
    except yaml.YAMLError as exc:
        try:  # JSON's own message is clearer for a JSON document
            data = json.loads(text)
        except ValueError:
            raise ApiDefinitionError(
                [Issue("", f"not valid JSON or YAML: {exc}")], source=source
            ) from None
    if not isinstance(data, Mapping):
        raise ApiDefinitionError([Issue("", "the document must be a mapping")], source=source)
    return data


def _parse(data: Mapping[str, Any], issues: list[Issue], source: str | None) -> ApiDefinition:
    if not (_is_version(data.get("openapi"), "3.") or _is_version(data.get("swagger"), "2.")):
        issues.append(Issue("openapi", "need 'openapi: 3.x' or 'swagger: \"2.0\"'"))
    info = data.get("info")
    title = info.get("title") if isinstance(info, Mapping) else None
    cors = parse_cors(data.get(CORS), CORS, issues) if CORS in data else None
    paths = data.get("paths")
    routes: list[Route] = []
    if not isinstance(paths, Mapping) or not paths:
        issues.append(Issue("paths", "must be a non-empty mapping of paths to operations"))
    else:
        for path, item in paths.items():
            routes.extend(_path_routes(str(path), item, issues))
    _check_clashes(routes, issues)
    routes.sort(key=Route.precedence)
    return ApiDefinition(
        title=str(title) if title else "", routes=tuple(routes), cors=cors, source=source
    )


def _check_clashes(routes: list[Route], issues: list[Issue]) -> None:
    """Two routes that match the same requests (``/a/{x}`` and ``/a/{y}``) are ambiguous."""
    seen: dict[tuple[str, tuple[object, ...]], Route] = {}
    for route in routes:
        shape = tuple("{+}" if s.greedy else "{}" if s.param else s.text for s in route.segments)
        key = (route.method, (route.path == DEFAULT_ROUTE, shape))
        if key in seen:
            other = seen[key].path
            issues.append(
                Issue(f"paths.{route.path}", f"clashes with {other!r} for {route.method}")
            )
        else:
            seen[key] = route


def _is_version(value: object, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix)


def _path_routes(path: str, item: object, issues: list[Issue]) -> list[Route]:
    where = f"paths.{path}"
    segments = _segments(path, where, issues)
    if not isinstance(item, Mapping):
        issues.append(Issue(where, "must be a mapping of operations"))
        return []
    routes = []
    for key, operation in item.items():
        method = str(key).lower()
        if method not in METHODS and method != ANY_METHOD:
            continue  # parameters, summary, servers, other extensions: not routing
        op_where = f"{where}.{key}"
        integration = _integration(operation, op_where, issues)
        if integration is not None and segments is not None:
            verb = "ANY" if method == ANY_METHOD else method.upper()
            routes.append(Route(verb, path, integration, segments))
    return routes


def _segments(path: str, where: str, issues: list[Issue]) -> tuple[Segment, ...] | None:
    if path == DEFAULT_ROUTE:
        return ()
    if not path.startswith("/"):
        issues.append(Issue(where, "a path must start with '/' (or be '$default')"))
        return None
    if path == "/":
        return ()
    parts = path[1:].removesuffix("/").split("/")
    segments, names = [], set()
    for index, part in enumerate(parts):
        match = _SEGMENT_PARAM.match(part)
        if match:
            name, greedy = match[1], bool(match[2])
            if greedy and index != len(parts) - 1:
                issues.append(Issue(where, f"greedy '{{{name}+}}' must be the last segment"))
                return None
            if name in names:
                issues.append(Issue(where, f"path parameter {name!r} appears twice"))
                return None
            names.add(name)
            segments.append(Segment(part, name, greedy))
        elif not part or "{" in part or "}" in part:
            issues.append(Issue(where, f"segment {part!r} is neither a literal nor '{{name}}'"))
            return None
        else:
            segments.append(Segment(part))
    return tuple(segments)


def _integration(operation: object, where: str, issues: list[Issue]) -> Integration | None:
    if not isinstance(operation, Mapping):
        issues.append(Issue(where, "an operation must be a mapping"))
        return None
    config = operation.get(INTEGRATION)
    where = f"{where}.{INTEGRATION}"
    if not isinstance(config, Mapping):
        issues.append(Issue(where, "missing: every operation needs a Lambda proxy integration"))
        return None
    count = len(issues)
    kind = config.get("type")
    if not isinstance(kind, str) or kind.lower() != "aws_proxy":
        issues.append(Issue(f"{where}.type", f"{kind!r} is not supported; use aws_proxy"))
    method = config.get("httpMethod", "POST")
    if not isinstance(method, str) or method.upper() != "POST":
        issues.append(Issue(f"{where}.httpMethod", "a Lambda integration is called with POST"))
    uri = _uri(config.get("uri"), f"{where}.uri", issues)
    version = _payload_version(config.get("payloadFormatVersion", "1.0"), where, issues)
    timeout = _timeout(config.get("timeoutInMillis"), version, f"{where}.timeoutInMillis", issues)
    if len(issues) > count or uri is None:
        return None
    return Integration(uri=uri, payload_format_version=version, timeout_ms=timeout)


def _uri(uri: object, where: str, issues: list[Issue]) -> str | None:
    if not isinstance(uri, str) or not uri:
        issues.append(Issue(where, "required: the Lambda function's invocation uri"))
        return None
    bad = [name for name in _STAGE_VARIABLE.findall(uri) if not _VARIABLE_NAME.match(name)]
    if bad:
        issues.append(Issue(where, f"stage variable name {bad[0]!r} is not [A-Za-z0-9_]+"))
        return None
    try:  # check the shape with every variable standing in as a plain name
        parse_function_uri(_STAGE_VARIABLE.sub("x", uri))
    except ValueError as exc:
        issues.append(Issue(where, f"does not name a Lambda function: {exc}"))
        return None
    return uri


def _payload_version(value: object, where: str, issues: list[Issue]) -> PayloadVersion:
    text = str(value) if isinstance(value, str | int | float) else None
    if text in ("1.0", "1"):
        return "1.0"
    if text in ("2.0", "2"):
        return "2.0"
    issues.append(Issue(f"{where}.payloadFormatVersion", f"{value!r} is not '1.0' or '2.0'"))
    return "1.0"


def _timeout(value: object, version: PayloadVersion, where: str, issues: list[Issue]) -> int:
    if value is None:
        return DEFAULT_TIMEOUT_MS[version]
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        issues.append(Issue(where, f"{value!r} is not a whole number of milliseconds"))
        return DEFAULT_TIMEOUT_MS[version]
    millis = int(value)
    if not MIN_TIMEOUT_MS <= millis <= MAX_TIMEOUT_MS:
        issues.append(Issue(where, f"must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}"))
    return millis
