"""Host routing on the local platform: which host name reaches which site and API stage.

Each environment's hosts route to its site with the API under ``/api``; a running release's green
host (``green.<environment host>``) routes to the new version alone. ``HostRouting`` rebuilds the
routes from the apps and hands them to every front router; ``origin_form`` turns proxy-style
requests (``GET http://test.app.localhost:7878/x``) into the plain path they name."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.types import Scope

from caravan.errors import ConflictError
from caravan.model.manifest import AppManifest, Environment
from caravan.platform.api import FrontRouter, HostRoute
from caravan.platform.apps import AppState

GREEN_PREFIX = "green."  # green.<environment host>: the new version alone, before it takes traffic


class HostRouting:
    """The routes of the apps that are up, plus the green routes, on every front router."""

    def __init__(self, apps: Mapping[str, AppState]) -> None:
        self._apps = apps
        self._routers: list[FrontRouter] = []
        self.green: dict[str, HostRoute] = {}

    def add_router(self, router: FrontRouter) -> None:
        self._routers.append(router)

    def routes(self) -> list[HostRoute]:
        routes = list(self.green.values())
        for name in sorted(name for name, state in self._apps.items() if not state.down):
            manifest = self._apps[name].manifest
            for env, environment in manifest.environments.items():
                site = manifest.site_name(env) if manifest.site is not None else None
                api = name if manifest.api is not None else None
                if site is None and api is None:
                    continue
                for host in environment_hosts(environment):
                    routes.append(
                        HostRoute(host, site=site, api=api, stage=env if api is not None else None)
                    )
        return routes

    def sync(self) -> None:
        routes = self.routes()
        for router in self._routers:
            router.set_routes(routes)


def check_hosts(manifest: AppManifest, apps: Mapping[str, AppState]) -> None:
    """Refuse host names another app (one that is up) already has."""
    mine = {h for e in manifest.environments.values() for h in environment_hosts(e)}
    for name, state in apps.items():
        if name == manifest.app or state.down:
            continue
        for environment in state.manifest.environments.values():
            taken = mine & set(environment_hosts(environment))
            if taken:
                raise ConflictError(
                    f"host {sorted(taken)[0]} is already a host of app {name!r}",
                    hint=f"take {name} down first, or choose other hosts",
                )


def environment_hosts(environment: Environment) -> list[str]:
    return list(environment.hosts or ())


def host_url(public_url: str, host: str) -> str:
    """``host`` on this server: the scheme and port of ``public_url``."""
    public = urlsplit(public_url)
    scheme = public.scheme or "http"
    return f"{scheme}://{host}:{public.port}" if public.port else f"{scheme}://{host}"


def origin_form(scope: Scope) -> Scope:
    """A proxy-style absolute target (``http://host/path``) as the plain path it names."""
    path: str = scope["path"]
    if not path.startswith(("http://", "https://")):
        return scope
    target = urlsplit(path)
    clean = target.path or "/"
    return {**scope, "path": clean, "raw_path": clean.encode("latin-1")}
