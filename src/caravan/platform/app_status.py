"""An app's status, as the apps API serves it (server/apps.py): for each environment its URLs,
what each function alias routes to, the site version served and its releases."""

from __future__ import annotations

from typing import Any

from caravan.errors import CaravanError
from caravan.platform.apps import AppState
from caravan.platform.routing import environment_hosts, host_url
from caravan.platform.running_releases import RunningReleases
from caravan.platform.sites import SiteStore


def app_status(
    state: AppState, *, releases: RunningReleases, sites: SiteStore, public_url: str
) -> dict[str, Any]:
    manifest = state.manifest
    return {
        "app": manifest.app,
        "pipeline": manifest.pipeline.pipeline.name,
        "repoDir": str(state.repo_dir),
        "environments": [
            environment_status(state, env, releases=releases, sites=sites, public_url=public_url)
            for env in manifest.environments
        ],
    }


def environment_status(
    state: AppState, env: str, *, releases: RunningReleases, sites: SiteStore, public_url: str
) -> dict[str, Any]:
    manifest = state.manifest
    environment = manifest.environments[env]
    aliases = []
    for function in manifest.functions:
        name = manifest.function_name(function)
        record = releases.mover(manifest.app, env).read(name, env)
        versions = []
        if record is not None:
            share = 1.0 - sum(record.weights.values())
            versions.append({"version": record.function_version, "weight": round(share, 6)})
            versions += [{"version": v, "weight": w} for v, w in record.weights.items()]
        aliases.append({"function": name, "alias": env, "versions": versions})
    site = None
    if manifest.site is not None:
        try:
            current = sites.current(manifest.site_name(env))
        except CaravanError:
            current = None
        if current is not None:
            site = {"version": current.version_id, "label": current.label}
    return {
        "name": env,
        "urls": [host_url(public_url, host) for host in environment_hosts(environment)],
        "aliases": aliases,
        "site": site,
        "release": release_status(releases, manifest.app, env),
    }


def release_status(releases: RunningReleases, app: str, env: str) -> dict[str, Any]:
    """The environment's releases, and the state of the latest active one (else the latest)."""
    book = sorted(releases.book(app, env).releases.values(), key=lambda r: r.started)
    if not book:
        return {"state": "idle", "detail": "nothing released yet", "releases": []}
    active = [r for r in book if r.active]
    shown = active[-1] if active else book[-1]
    return {
        "state": str(shown.state),
        "detail": shown.detail,
        "releases": [r.summary() for r in book],
    }
