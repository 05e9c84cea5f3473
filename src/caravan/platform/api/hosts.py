"""Addressing: one ASGI app routing requests to API stages and sites by Host header or by path.

    front = FrontRouter(gateway, sites=store, fallback=server_app, routes=[
        HostRoute("test.dromedary.localhost", site="dromedary-test", api="dromedary", stage="test"),
        HostRoute("api.dromedary.localhost", api="dromedary", stage="prod"),
    ])

The table is data: ``HostRoute(host, site, api, stage, api_prefix="/api")``, replaceable at
runtime (``set_routes``, ``add_route``, ``remove_route``; the next request sees the change).

* A host in the table owns its whole namespace. With a site and an API, the API is mounted at
  ``api_prefix`` (``/api/data`` reaches the stage's ``/data`` route) and the site answers every
  other path, so the page and its API share one origin (no CORS needed). With only an API, the
  stage answers at the root; with only a site, the site does.
* Any other host may address a stage by path: ``/apis/{api}/{stage}/...`` (``APIS_PREFIX``; a
  plural so it cannot collide with the server's own ``/api/...``), like the stage URL
  ``https://{id}.execute-api.{region}.amazonaws.com/{stage}/...``.
* Everything else — unknown hosts, other paths — falls through to ``fallback`` (the server's
  other routes), or gets ``404`` without one.

Hosts match case-insensitively, without the port. Tests and scripts send the ``Host`` header to
``127.0.0.1:<port>``; nothing here depends on DNS (``*.localhost`` need not resolve).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.asgi import not_http
from caravan.errors import InvalidInputError
from caravan.platform.api.asgi import route_path
from caravan.platform.api.gateway import Gateway
from caravan.platform.sites import SiteStore, site_app

APIS_PREFIX = "/apis"
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")


@dataclass(frozen=True)
class HostRoute:
    """What one host name serves: a site, an API stage, or both (the API under api_prefix)."""

    host: str
    site: str | None = None
    api: str | None = None
    stage: str | None = None
    api_prefix: str = "/api"

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", self.host.strip().lower())
        problems = []
        if not _HOST.match(self.host):
            problems.append(f"host {self.host!r} must be a host name without port")
        if (self.api is None) != (self.stage is None):
            problems.append("api and stage go together: name both or neither")
        if self.site is None and self.api is None:
            problems.append("a host route needs a site, an API stage, or both")
        if not _PREFIX.match(self.api_prefix):
            problems.append(f"api_prefix {self.api_prefix!r} must look like '/api'")
        if problems:
            raise InvalidInputError(f"host route {self.host!r}: " + "; ".join(problems))


class FrontRouter:
    """The ASGI app in front: the host table, then ``/apis/...``, then the fallback app."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        sites: SiteStore | None = None,
        routes: Iterable[HostRoute] = (),
        fallback: ASGIApp | None = None,
        apis_prefix: str = APIS_PREFIX,
    ) -> None:
        if not _PREFIX.match(apis_prefix):
            raise InvalidInputError(f"apis_prefix {apis_prefix!r} must look like '/apis'")
        self.gateway = gateway
        self.sites = sites
        self.fallback = fallback
        self.apis_prefix = apis_prefix
        self._table: dict[str, HostRoute] = {}
        self._site_apps: dict[str, ASGIApp] = {}
        self.set_routes(routes)

    # ------------------------------------------------------------------------------ the table

    def set_routes(self, routes: Iterable[HostRoute]) -> None:
        """Replace the whole table at once."""
        table: dict[str, HostRoute] = {}
        for route in routes:
            if route.host in table:
                raise InvalidInputError(f"host {route.host!r} is routed twice")
            table[route.host] = route
        self._table = table  # one reference swap

    def add_route(self, route: HostRoute) -> None:
        """Add or replace the route of ``route.host``."""
        self._table = {**self._table, route.host: route}

    def remove_route(self, host: str) -> None:
        self._table = {h: r for h, r in self._table.items() if h != host.lower()}

    def routes(self) -> list[HostRoute]:
        return sorted(self._table.values(), key=lambda r: r.host)

    # ------------------------------------------------------------------------------ serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._table.get(request_host(scope))
            if route is not None:
                await self._serve_host(route, scope, receive, send)
                return
            path = route_path(scope)
            if path == self.apis_prefix or path.startswith(self.apis_prefix + "/"):
                await self._serve_path_style(path, scope, receive, send)
                return
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif scope["type"] == "http":
            await _not_found(send)
        else:
            await not_http(scope, receive, send)

    async def _serve_host(
        self, route: HostRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        path = route_path(scope)
        prefix = route.api_prefix
        if route.api is not None and route.stage is not None:
            if route.site is None:
                await self.gateway.serve(route.api, route.stage, scope, receive, send)
                return
            if path == prefix or path.startswith(prefix + "/"):
                child = {**scope, "root_path": scope.get("root_path", "") + prefix}
                await self.gateway.serve(route.api, route.stage, child, receive, send)
                return
        if route.site is None or self.sites is None:
            await _not_found(send)
            return
        await self._site_app(route.site)(scope, receive, send)

    async def _serve_path_style(
        self, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        parts = path[len(self.apis_prefix) :].split("/", 3)  # "", api, stage, rest
        if len(parts) < 3 or not parts[1] or not parts[2]:
            await _not_found(send)
            return
        api, stage = parts[1], parts[2]
        mount = f"{self.apis_prefix}/{api}/{stage}"
        child = {**scope, "root_path": scope.get("root_path", "") + mount}
        await self.gateway.serve(api, stage, child, receive, send)

    def _site_app(self, site: str) -> ASGIApp:
        app = self._site_apps.get(site)
        if app is None:
            if self.sites is None:  # checked by the caller; keeps the type precise
                raise InvalidInputError("no site store")
            app = self._site_apps[site] = site_app(self.sites, site)
        return app


def request_host(scope: Scope) -> str:
    """The Host header's name, lower-cased, without the port (IPv6 literals kept whole)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"host":
            host: str = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host.split("]", 1)[0] + "]"
            return host.rsplit(":", 1)[0] if ":" in host else host
    return ""


async def _not_found(send: Send) -> None:
    body = b'{"message":"Not Found"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
