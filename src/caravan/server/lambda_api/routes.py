"""The route table of the Lambda API: (method, path template) -> operation handler.

Paths are botocore's ``requestUri``s under ``/2015-03-31/functions``. ``{FunctionName}`` is one
path segment (a name, ``name:qualifier`` or an ARN, which botocore percent-encodes); a trailing
slash is tolerated. ``match`` answers the handler and the path parameters, or raises
UnknownOperationException (404) for a path no operation has and MethodNotAllowedException (405)
for a path that exists with other methods.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import Response

from caravan.server.lambda_api import aliases, functions, invoke
from caravan.server.lambda_api.errors import MethodNotAllowedException, UnknownOperationException
from caravan.server.lambda_api.requests import Call

PREFIX = "/2015-03-31/functions"

Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # relative to PREFIX, e.g. "/{FunctionName}/aliases/{Name}"
    operation: str
    handler: Handler

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.template)


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}/?$")


ROUTES: tuple[Route, ...] = (
    Route("POST", "", "CreateFunction", functions.create_function),
    Route("GET", "", "ListFunctions", functions.list_functions),
    Route("GET", "/{FunctionName}", "GetFunction", functions.get_function),
    Route("DELETE", "/{FunctionName}", "DeleteFunction", functions.delete_function),
    Route(
        "GET",
        "/{FunctionName}/configuration",
        "GetFunctionConfiguration",
        functions.get_function_configuration,
    ),
    Route(
        "PUT",
        "/{FunctionName}/configuration",
        "UpdateFunctionConfiguration",
        functions.update_function_configuration,
    ),
    Route("PUT", "/{FunctionName}/code", "UpdateFunctionCode", functions.update_function_code),
    Route("POST", "/{FunctionName}/versions", "PublishVersion", functions.publish_version),
    Route(
        "GET",
        "/{FunctionName}/versions",
        "ListVersionsByFunction",
        functions.list_versions_by_function,
    ),
    Route("POST", "/{FunctionName}/aliases", "CreateAlias", aliases.create_alias),
    Route("GET", "/{FunctionName}/aliases", "ListAliases", aliases.list_aliases),
    Route("GET", "/{FunctionName}/aliases/{Name}", "GetAlias", aliases.get_alias),
    Route("PUT", "/{FunctionName}/aliases/{Name}", "UpdateAlias", aliases.update_alias),
    Route("DELETE", "/{FunctionName}/aliases/{Name}", "DeleteAlias", aliases.delete_alias),
    Route("POST", "/{FunctionName}/invocations", "Invoke", invoke.invoke),
)
_COMPILED = tuple((route, route.pattern) for route in ROUTES)


def relative_path(path: str, root_path: str = "") -> str | None:
    """``path`` below PREFIX; None when it is not a Lambda API path.

    A mount may keep the full path (Starlette's ``Mount``) or strip its prefix into
    ``root_path``; both reach the same route.
    """
    if path == PREFIX or path.startswith(PREFIX + "/"):
        return path[len(PREFIX) :]
    if root_path.endswith(PREFIX):
        return path
    return None


def match(method: str, path: str, root_path: str = "") -> tuple[Route, dict[str, str]]:
    """The route for ``method path`` and its path parameters."""
    relative = relative_path(path, root_path)
    allowed: list[str] = []
    if relative is not None:
        for route, pattern in _COMPILED:
            found = pattern.match(relative)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
    if allowed:
        raise MethodNotAllowedException(
            f"{method} is not an operation of {path}; it takes {', '.join(sorted(allowed))}"
        )
    raise UnknownOperationException(
        f"no Lambda operation at {method} {path[:200]}; the Lambda API lives under {PREFIX}"
    )
