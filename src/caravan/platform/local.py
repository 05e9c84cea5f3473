"""The local platform: functions, the API front, sites and app environments under one directory.

    platform = await LocalPlatform.open(data_dir / "platform", public_url="http://127.0.0.1:7878")
    await platform.up(load_manifest(repo / "caravan.yml"), repo_dir=repo)
    app = platform.front(server_app)        # test.dromedary.localhost -> site + API under /api
    await platform.rollback("dromedary", "prod")
    await platform.aclose()

An app (its manifest) has environments; each is an API stage named after it, a site
``<app>-<env>``, a Lambda alias named after it on every function ``<app>-<function>``, and host
names routed to the site with the API under ``/api``. Everything is kept under ``root``::

    functions/ logs/     the function registry (versions, aliases) and its logs
    sites/               published site versions
    apps/<app>.json      the manifest, the repository and each stage's API definition
    releases/<app>-<env>.json   releases, release history (for rollback) and alias moves
    data/<app>/          the app's own data (CARAVAN_APP_DATA, the manifest's ${dataDir})

``open`` restores it all: API stages are redeployed, routes rebuilt, and releases that were
running resume (releases.py). The deploy actions (caravan.actions.platform_deploy) reach the
platform through the job context and call ``release``, ``deploy_api`` and ``publish_site``.

``LocalPlatform`` composes the parts kept in their own modules: apps.py (app state and its
files), routing.py (host and green routes), running_releases.py (releases in progress, their
books, hooks and health watchers) and app_status.py (what ``app_status`` reports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.errors import CaravanError, ConflictError, InvalidInputError, NotFoundError
from caravan.model.manifest import AppManifest, Environment
from caravan.platform.api import FrontRouter, Gateway, HostRoute, RollingMetrics, load_definition
from caravan.platform.api.gateway import Stage
from caravan.platform.app_status import app_status
from caravan.platform.apps import AppState, app_file, environment_differences, load_apps, save_app
from caravan.platform.functions import FunctionRegistry, Invoker, ResourceNotFoundException
from caravan.platform.functions.layer import RuntimeExtras, aws_sdk_layer
from caravan.platform.functions.runtime import WorkerRuntime
from caravan.platform.release_book import serves_only
from caravan.platform.releases import Release, ReleaseState, plan_release
from caravan.platform.routing import (
    GREEN_PREFIX,
    HostRouting,
    check_hosts,
    environment_hosts,
    host_url,
    origin_form,
)
from caravan.platform.running_releases import (
    LogSink,
    RequestRecorder,
    RunningRelease,
    RunningReleases,
    ignore_log,
    previous_version,
)
from caravan.platform.sites import SiteStore, SiteVersion

DEFAULT_PUBLIC_URL = "http://127.0.0.1:7878"
APP_DATA_VARIABLE = "CARAVAN_APP_DATA"
_log = logging.getLogger("caravan.platform")


class LocalPlatform:
    """Functions + API front + sites + app environments under one data directory."""

    def __init__(self, root: Path, *, public_url: str = DEFAULT_PUBLIC_URL) -> None:
        self.root = Path(root)
        self.public_url = public_url
        self.functions = FunctionRegistry(self.root)
        # Functions get the AWS SDK aimed at this server, as Lambda's runtime gives it to them.
        extras = RuntimeExtras(path=aws_sdk_layer(self.root / "layers"), env=self.aws_environment)
        self.invoker = Invoker(self.functions, runtime=WorkerRuntime(extras=extras))
        self.metrics = RollingMetrics()
        self._recorder = RequestRecorder(self.metrics)
        self.gateway = Gateway(self.invoker, recorder=self._recorder)
        self.sites = SiteStore(self.root / "sites", asset_max_age=0)  # dromedary's JS is unhashed
        self._apps: dict[str, AppState] = {}
        self._routing = HostRouting(self._apps)
        self._releases = RunningReleases(
            self.root,
            self.functions,
            self._recorder,
            host=self,
            repo_dir=lambda app: self._apps[app].repo_dir,
        )

    @classmethod
    async def open(cls, root: Path, *, public_url: str = DEFAULT_PUBLIC_URL) -> LocalPlatform:
        """The platform kept under ``root``, restored: stages, routes, running releases."""
        platform = cls(root, public_url=public_url)
        platform._restore()
        return platform

    async def aclose(self) -> None:
        """Stop release runners (they resume on the next ``open``) and every function worker."""
        await self._releases.aclose()
        await self.invoker.aclose()

    # ------------------------------------------------------------------------------ serving

    def front(self, fallback: ASGIApp) -> ASGIApp:
        """Host-header routing for app environments, ``fallback`` for any other request.

        Requests in absolute form (``GET http://test.app.localhost:7878/x``, what an HTTP
        client sends to a proxy) are served too: commands run by caravan get ``http_proxy``
        pointing here, so environment host names work without DNS."""
        router = FrontRouter(
            self.gateway, sites=self.sites, routes=self._routing.routes(), fallback=fallback
        )
        self._routing.add_router(router)

        async def front_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope = origin_form(scope)
            await router(scope, receive, send)

        return front_app

    def environment_url(self, app: str, env: str) -> str:
        """The environment's URL on this server, e.g. ``http://test.dromedary.localhost:7878``."""
        return host_url(self.public_url, environment_hosts(self._environment(app, env))[0])

    # --------------------------------------------------------------------------------- apps

    async def up(self, manifest: AppManifest, *, repo_dir: Path) -> list[str]:
        """Create or update the app's environments, routes and function settings; what changed
        ("created environment test (test.dromedary.localhost)", ...), [] when nothing did."""
        name = manifest.app
        check_hosts(manifest, self._apps)
        old = self._apps.get(name)
        fresh = old is None or old.down
        state = AppState(manifest, Path(repo_dir).resolve(), dict(old.apis) if old else {})
        changes: list[str] = []
        before = {} if old is None or old.down else old.manifest.environments
        for env, environment in manifest.environments.items():
            hosts = ", ".join(environment_hosts(environment))
            if env not in before:
                changes.append(f"created environment {env} ({hosts})")
            elif before[env] != environment:
                changed = environment_differences(before[env], environment)
                changes.append(f"updated environment {env} ({changed})")
        for env in before:
            if env not in manifest.environments:
                state.apis.pop(env, None)
                self._delete_stage(name, env)
                changes.append(f"removed environment {env} (its data is kept)")
        if old is not None and not fresh and old.repo_dir != state.repo_dir:
            changes.append(f"repository is now {state.repo_dir}")
        changes += self._sync_stages(state)
        self._apps[name] = state
        changes += self._sync_functions(manifest)
        if old is None or old.to_json() != state.to_json():
            self._save_app(state)
        self._sync_routes()
        return changes

    async def down(self, app: str, *, purge: bool = False) -> list[str]:
        """Remove the app's environments (routes, stages) and stop its releases; with ``purge``
        also its functions, sites, data and release history. Safe on a half-created app."""
        state = self._apps.get(app)
        if state is None:
            raise NotFoundError(f"no app named {app!r} (apps: {', '.join(self.apps()) or 'none'})")
        changes: list[str] = []
        if not state.down:
            await self._releases.stop(app, "the app was taken down")
            for env, environment in state.manifest.environments.items():
                self._delete_stage(app, env)
                self._close_greens(app, env)
                changes.append(
                    f"removed environment {env} ({', '.join(environment_hosts(environment))})"
                )
            state.down = True
            self._save_app(state)
        if purge:
            changes += self._purge(state)
        self._sync_routes()
        return changes

    def apps(self) -> list[str]:
        return sorted(name for name, state in self._apps.items() if not state.down)

    def app_for_pipeline(self, pipeline: str) -> tuple[AppManifest, Path] | None:
        """The app whose manifest declares ``pipeline``, and its repository directory."""
        for state in self._apps.values():
            if not state.down and state.manifest.pipeline.pipeline.name == pipeline:
                return state.manifest, state.repo_dir
        return None

    def app_status(self, app: str) -> dict[str, Any]:
        return app_status(
            self._app(app), releases=self._releases, sites=self.sites, public_url=self.public_url
        )

    # ----------------------------------------------------------------------------- releases

    async def rollback(
        self, app: str, env: str, *, to_version: str | None = None
    ) -> dict[str, Any]:
        """Put every function alias and the site of ``env`` back to the previous (or given)
        release in one step. A release in progress is aborted instead (that is its rollback)."""
        state = self._app(app)
        self._environment(app, env)
        where = f"{app}/{env}"
        if to_version is None and self._releases.active(app, env):
            return await self.abort(app, env)
        book = self._releases.book(app, env)
        target = book.rollback_target(where, to_version)
        manifest = state.manifest
        site = target["site"]
        if site is not None and manifest.site is not None:
            self._check_site_kept(where, manifest.site_name(env), site["version"], target["id"])
        await self._releases.stop(app, env_only=env, reason=f"rolled back by request in {where}")
        mover = self._releases.mover(app, env)
        moved = []
        for function, version in sorted(target["functions"].items()):
            name = manifest.function_name(function)
            current = mover.read(name, env)
            if serves_only(current, version):
                continue
            mover.move(name, env, version, cause=f"rollback of {where}")
            before = current.function_version if current else None
            moved.append({"function": name, "alias": env, "from": before, "to": version})
        site_move = None
        if site is not None and manifest.site is not None:
            site_name = manifest.site_name(env)
            current_site = self.sites.current(site_name)
            if current_site is None or current_site.version_id != site["version"]:
                self.sites.activate(site_name, site["version"])
                before_site = current_site.version_id if current_site else None
                site_move = {"site": site_name, "from": before_site, "to": site["version"]}
        entry = book.record(
            "rollback",
            functions=target["functions"],
            site=site,
            restored_from=target["id"],
            replace=True,
        )
        return {
            "app": app,
            "environment": env,
            "release": entry["id"],
            "restored": target["id"],
            "functions": moved,
            "site": site_move,
        }

    def _check_site_kept(self, where: str, site: str, version: str, release: int) -> None:
        try:
            self.sites.version(site, version)
        except NotFoundError:
            raise ConflictError(
                f"{where}: release {release} had site version {version}, which is no longer "
                f"kept (the newest {self.sites.keep} versions of {site} are)"
            ) from None

    async def promote(self, app: str, env: str) -> dict[str, Any]:
        """Finish the running releases of ``env`` now: all traffic to the new version."""
        running = self._require_active(app, env)
        for item in running:
            item.control.promote()
        return await self._releases.outcome(app, env, running)

    async def abort(self, app: str, env: str) -> dict[str, Any]:
        """Stop the running releases of ``env`` and roll them back."""
        running = self._require_active(app, env)
        for item in running:
            item.control.abort("by request")
        return await self._releases.outcome(app, env, running)

    async def release(
        self,
        app: str,
        env: str,
        function: str,
        version: str,
        *,
        execution_id: str | None = None,
        published: bool = False,
        log: LogSink | None = None,
    ) -> Release:
        """Release ``version`` of ``function`` to ``env`` by the environment's policy and wait
        for the outcome (promoted, rolled-back, stopped). A release of the same version already
        running (e.g. resumed after a restart) is joined; one of another version is aborted."""
        state = self._app(app)
        environment = self._environment(app, env)
        if function not in state.manifest.functions:
            raise NotFoundError(f"app {app!r} has no function {function!r}")
        key = (app, env, function)
        running = self._releases.running.get(key)
        if running is not None and running.release.target == version:
            running.sinks.append(log or ignore_log)
            return await self._releases.join(running)
        if running is not None:
            running.control.abort(f"superseded by version {version}")
            await asyncio.gather(running.task, return_exceptions=True)
        name = state.manifest.function_name(function)
        current = self._releases.mover(app, env).read(name, env)
        release = plan_release(
            app=app,
            environment=env,
            function=function,
            function_name=name,
            policy=environment.release,
            target=version,
            previous=previous_version(current, version),
            execution_id=execution_id,
            now=self._releases.clock(),
            published=published,
        )
        book = self._releases.book(app, env)
        if serves_only(current, version):
            release.state, release.ended = ReleaseState.PROMOTED, release.started
            release.detail = f"version {version} already serves all of {env}"
            release.percent = 100
            book.put(release)
            book.record("deploy", execution_id=execution_id, functions={function: version})
            (log or ignore_log)(f"{name}:{env}: {release.detail}")
            return release
        self._releases.note_baseline(app, env, function, release.previous)
        book.put(release)
        return await self._releases.join(self._releases.start(release, [log or ignore_log]))

    def deploy_api(self, app: str, env: str, text: str, *, source: str) -> Stage:
        """Apply an OpenAPI document to the environment's stage (kept for restarts)."""
        state = self._app(app)
        environment = self._environment(app, env)
        definition = load_definition(text, source=source)
        stage = self.gateway.deploy(app, env, definition, environment.stage_variables)
        state.apis[env] = {"definition": text, "source": source}
        self._save_app(state)
        return stage

    async def publish_site(
        self,
        app: str,
        env: str,
        source: Path,
        *,
        config: Mapping[str, Any],
        label: str,
        execution_id: str | None = None,
    ) -> SiteVersion:
        """Publish the site of ``env`` atomically and note it in the release history."""
        state = self._app(app)
        self._environment(app, env)
        if state.manifest.site is None:
            raise InvalidInputError(f"app {app!r} declares no site")
        version = await asyncio.to_thread(
            self.sites.publish,
            state.manifest.site_name(env),
            source,
            config=config,
            version_label=label,
        )
        self._releases.book(app, env).record(
            "deploy",
            execution_id=execution_id,
            site={"version": version.version_id, "label": version.label},
        )
        return version

    def data_dir(self, app: str) -> Path:
        """The app's own data directory (created on demand)."""
        path = self.root / "data" / app
        path.mkdir(parents=True, exist_ok=True)
        return path

    def function_configuration(self, app: str, function: str) -> dict[str, Any]:
        """The settings ``<app>-<function>`` runs with: the manifest's, with the app's data
        directory in ``CARAVAN_APP_DATA`` and ``${dataDir}``."""
        manifest = self._app(app).manifest
        spec = manifest.functions.get(function)
        if spec is None:
            raise NotFoundError(f"app {app!r} has no function {function!r}")
        data = str(self.data_dir(app))
        environment = {APP_DATA_VARIABLE: data, **spec.resolved_environment(data_dir=data)}
        return {
            "handler": spec.handler,
            "runtime": spec.runtime,
            "memory_size": spec.memory_size,
            "timeout": spec.timeout,
            "environment": environment,
            "description": spec.description or f"{app} {function}",
        }

    def environment(self, app: str, env: str) -> Environment:
        return self._environment(app, env)

    def aws_environment(self) -> dict[str, str]:
        """AWS settings every function runs with: the SDK reaches caravan's S3, Lambda and
        CodePipeline APIs on this server (path-style S3 addressing: no DNS needed)."""
        config = self.root / "layers" / "aws-config"
        if not config.exists():
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text("[default]\ns3 =\n    addressing_style = path\n")
        return {
            "AWS_ENDPOINT_URL": self.public_url,
            "AWS_ACCESS_KEY_ID": "caravan",
            "AWS_SECRET_ACCESS_KEY": "caravan",
            "AWS_CONFIG_FILE": str(config),
        }

    def command_environment(self) -> dict[str, str]:
        """Variables for commands caravan runs against environments (tests, hooks): HTTP clients
        reach ``*.localhost`` hosts through this server, as a proxy, without DNS."""
        return {"http_proxy": self.public_url, "HTTP_PROXY": self.public_url}

    def _require_active(self, app: str, env: str) -> list[RunningRelease]:
        self._environment(app, env)
        running = self._releases.active(app, env)
        if not running:
            raise ConflictError(f"no release is in progress in {app}/{env}")
        return running

    # --------------------------------------------------------------------------- green hosts

    def open_green(self, release: Release) -> str:
        """Serve the release's version alone at ``green.<environment host>``."""
        state = self._app(release.app)
        environment = self._environment(release.app, release.environment)
        host = GREEN_PREFIX + environment_hosts(environment)[0]
        api = state.apis.get(release.environment)
        stage = f"{release.environment}-green"
        if api is not None:
            definition = load_definition(api["definition"], source=api["source"])
            if "alias" not in definition.stage_variables:
                _log.warning("%s: the API's integrations ignore ${stageVariables.alias}", host)
            variables = {**environment.stage_variables, "alias": release.target}
            self.gateway.deploy(release.app, stage, definition, variables)
        site = state.manifest.site_name(release.environment) if state.manifest.site else None
        if api is not None or site is not None:
            self._routing.green[host] = HostRoute(
                host,
                site=site,
                api=release.app if api is not None else None,
                stage=stage if api is not None else None,
            )
            self._sync_routes()
        return host_url(self.public_url, host)

    def close_green(self, release: Release) -> None:
        self._close_greens(release.app, release.environment)

    def _close_greens(self, app: str, env: str) -> None:
        state = self._apps.get(app)
        if state is None or env not in state.manifest.environments:
            return
        host = GREEN_PREFIX + environment_hosts(state.manifest.environments[env])[0]
        if self._routing.green.pop(host, None) is not None:
            self._sync_routes()
        self._delete_stage(app, f"{env}-green")

    # ----------------------------------------------------------------------------- internals

    def _restore(self) -> None:
        for state in load_apps(self.root):
            self._apps[state.manifest.app] = state
            if not state.down:
                self._sync_stages(state)
        self._sync_routes()
        for name in self.apps():
            for env in self._apps[name].manifest.environments:
                for release in self._releases.book(name, env).active():
                    self._releases.start(release, [])

    def _sync_stages(self, state: AppState) -> list[str]:
        """(Re)deploy every stage whose definition is known; report changed stage variables."""
        changes = []
        for env, api in state.apis.items():
            environment = state.manifest.environments.get(env)
            if environment is None:
                continue
            try:
                existing = self.gateway.stage(state.manifest.app, env)
            except NotFoundError:
                existing = None
            if existing is not None and dict(existing.variables) == environment.stage_variables:
                continue
            try:
                definition = load_definition(api["definition"], source=api["source"])
                self.gateway.deploy(
                    state.manifest.app, env, definition, environment.stage_variables
                )
            except CaravanError as exc:
                _log.warning("cannot deploy the API stage %s/%s: %s", state.manifest.app, env, exc)
                continue
            if existing is not None:
                changes.append(f"updated the stage variables of {env}")
        return changes

    def _sync_functions(self, manifest: AppManifest) -> list[str]:
        changes = []
        for function in manifest.functions:
            name = manifest.function_name(function)
            try:
                latest = self.functions.version(name, "$LATEST")
            except ResourceNotFoundException:
                continue  # created by its first deploy
            wanted = self.function_configuration(manifest.app, function)
            have = {
                "handler": latest.handler,
                "runtime": latest.runtime,
                "memory_size": latest.memory_size,
                "timeout": latest.timeout,
                "environment": dict(latest.environment),
                "description": latest.description,
            }
            if have != wanted:
                self.functions.update_function_configuration(name, **wanted)
                changes.append(
                    f"updated the configuration of function {name} (from its next deploy)"
                )
        return changes

    def _purge(self, state: AppState) -> list[str]:
        manifest, changes = state.manifest, []
        for function in manifest.functions:
            name = manifest.function_name(function)
            try:
                self.functions.delete_function(name)
                changes.append(f"deleted function {name}")
            except ResourceNotFoundException:
                pass
        for env in manifest.environments:
            site = self.sites.root / manifest.site_name(env)
            if site.is_dir():
                shutil.rmtree(site, ignore_errors=True)
                changes.append(f"deleted site {manifest.site_name(env)}")
            self._releases.books.pop((manifest.app, env), None)
            book = self._releases.book_file(manifest.app, env)
            if book.is_file():
                book.unlink()
                changes.append(f"deleted the release history of {env}")
        data = self.root / "data" / manifest.app
        if data.is_dir():
            shutil.rmtree(data, ignore_errors=True)
            changes.append(f"deleted the data directory {data}")
        app_file(self.root, manifest.app).unlink(missing_ok=True)
        del self._apps[manifest.app]
        return changes

    def _delete_stage(self, app: str, stage: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.gateway.delete_stage(app, stage)

    def _sync_routes(self) -> None:
        self._routing.sync()

    def _save_app(self, state: AppState) -> None:
        save_app(self.root, state)

    def _app(self, app: str) -> AppState:
        state = self._apps.get(app)
        if state is None or state.down:
            known = ", ".join(self.apps()) or "none"
            raise NotFoundError(f"no app named {app!r} (apps: {known})", hint="run caravan up")
        return state

    def _environment(self, app: str, env: str) -> Environment:
        environments = self._app(app).manifest.environments
        if env not in environments:
            known = ", ".join(environments)
            raise NotFoundError(f"app {app!r} has no environment {env!r} (environments: {known})")
        return environments[env]
