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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.errors import CaravanError, ConflictError, InvalidInputError, NotFoundError
from caravan.model.manifest import AppManifest, Environment, manifest_from_data
from caravan.platform.api import FrontRouter, Gateway, HostRoute, RollingMetrics, load_definition
from caravan.platform.api.gateway import Stage
from caravan.platform.api.metrics import RequestSample
from caravan.platform.functions import (
    AliasRecord,
    FunctionRegistry,
    Invoker,
    ResourceNotFoundException,
)
from caravan.platform.functions.layer import RuntimeExtras, aws_sdk_layer
from caravan.platform.functions.runtime import WorkerRuntime
from caravan.platform.releases import (
    AliasMover,
    Release,
    ReleaseBook,
    ReleaseControl,
    ReleaseDeps,
    ReleaseRunner,
    ReleaseState,
    plan_release,
    serves_only,
    write_json,
)
from caravan.platform.sites import SiteStore, SiteVersion

DEFAULT_PUBLIC_URL = "http://127.0.0.1:7878"
APP_DATA_VARIABLE = "CARAVAN_APP_DATA"
GREEN_PREFIX = "green."  # green.<environment host>: the new version alone, before it takes traffic
HOOK_TIMEOUT_S = 600.0
_log = logging.getLogger("caravan.platform")
LogSink = Callable[[str], None]


class _Recorder:
    """The gateway's recorder: every request to ``metrics``, and to the watchers of running
    releases (each counts its environment's requests from the moment the release started)."""

    def __init__(self, metrics: RollingMetrics) -> None:
        self.metrics = metrics
        self._watchers: dict[int, tuple[str, str, RollingMetrics]] = {}
        self._next = 0

    def record(self, sample: RequestSample) -> None:
        self.metrics.record(sample)
        for api, stage, watcher in list(self._watchers.values()):
            if sample.api == api and sample.stage == stage:
                watcher.record(sample)

    def watch(self, api: str, stage: str) -> tuple[int, RollingMetrics]:
        self._next += 1
        watcher = RollingMetrics(window_s=7 * 24 * 3600.0, max_samples=100_000)
        self._watchers[self._next] = (api, stage, watcher)
        return self._next, watcher

    def unwatch(self, token: int) -> None:
        self._watchers.pop(token, None)


@dataclass
class _App:
    manifest: AppManifest
    repo_dir: Path
    apis: dict[str, dict[str, str]] = field(default_factory=dict)  # env -> definition, source
    down: bool = False

    def to_json(self) -> dict[str, Any]:
        manifest = self.manifest
        data = manifest.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"pipeline"}
        )
        data.update(manifest.pipeline.to_request())  # the pipeline as a CreatePipeline request
        return {
            "manifest": data,
            "repoDir": str(self.repo_dir),
            "apis": self.apis,
            "down": self.down,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _App:
        return cls(
            manifest=manifest_from_data(data["manifest"]),
            repo_dir=Path(data["repoDir"]),
            apis=dict(data.get("apis") or {}),
            down=bool(data.get("down")),
        )


@dataclass
class _Running:
    release: Release
    control: ReleaseControl
    task: asyncio.Task[Release]
    sinks: list[LogSink]


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
        self._recorder = _Recorder(self.metrics)
        self.gateway = Gateway(self.invoker, recorder=self._recorder)
        self.sites = SiteStore(self.root / "sites", asset_max_age=0)  # dromedary's JS is unhashed
        self._apps: dict[str, _App] = {}
        self._books: dict[tuple[str, str], ReleaseBook] = {}
        self._running: dict[tuple[str, str, str], _Running] = {}
        self._routers: list[FrontRouter] = []
        self._green: dict[str, HostRoute] = {}

    @classmethod
    async def open(cls, root: Path, *, public_url: str = DEFAULT_PUBLIC_URL) -> LocalPlatform:
        """The platform kept under ``root``, restored: stages, routes, running releases."""
        platform = cls(root, public_url=public_url)
        platform._restore()
        return platform

    async def aclose(self) -> None:
        """Stop release runners (they resume on the next ``open``) and every function worker."""
        tasks = [running.task for running in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.invoker.aclose()

    # ------------------------------------------------------------------------------ serving

    def front(self, fallback: ASGIApp) -> ASGIApp:
        """Host-header routing for app environments, ``fallback`` for any other request.

        Requests in absolute form (``GET http://test.app.localhost:7878/x``, what an HTTP
        client sends to a proxy) are served too: commands run by caravan get ``http_proxy``
        pointing here, so environment host names work without DNS."""
        router = FrontRouter(
            self.gateway, sites=self.sites, routes=self._routes(), fallback=fallback
        )
        self._routers.append(router)

        async def front_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope = _origin_form(scope)
            await router(scope, receive, send)

        return front_app

    def environment_url(self, app: str, env: str) -> str:
        """The environment's URL on this server, e.g. ``http://test.dromedary.localhost:7878``."""
        return self._host_url(self._hosts(self._environment(app, env))[0])

    # --------------------------------------------------------------------------------- apps

    async def up(self, manifest: AppManifest, *, repo_dir: Path) -> list[str]:
        """Create or update the app's environments, routes and function settings; what changed
        ("created environment test (test.dromedary.localhost)", ...), [] when nothing did."""
        name = manifest.app
        self._check_hosts(manifest)
        old = self._apps.get(name)
        fresh = old is None or old.down
        state = _App(manifest, Path(repo_dir).resolve(), dict(old.apis) if old else {})
        changes: list[str] = []
        before = {} if old is None or old.down else old.manifest.environments
        for env, environment in manifest.environments.items():
            hosts = ", ".join(self._hosts(environment))
            if env not in before:
                changes.append(f"created environment {env} ({hosts})")
            elif before[env] != environment:
                changes.append(
                    f"updated environment {env} ({_differences(before[env], environment)})"
                )
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
            await self._stop_releases(app, "the app was taken down")
            for env, environment in state.manifest.environments.items():
                self._delete_stage(app, env)
                self._close_greens(app, env)
                changes.append(f"removed environment {env} ({', '.join(self._hosts(environment))})")
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
        state = self._app(app)
        manifest = state.manifest
        return {
            "app": app,
            "pipeline": manifest.pipeline.pipeline.name,
            "repoDir": str(state.repo_dir),
            "environments": [self._environment_status(state, env) for env in manifest.environments],
        }

    # ----------------------------------------------------------------------------- releases

    async def rollback(
        self, app: str, env: str, *, to_version: str | None = None
    ) -> dict[str, Any]:
        """Put every function alias and the site of ``env`` back to the previous (or given)
        release in one step. A release in progress is aborted instead (that is its rollback)."""
        state = self._app(app)
        self._environment(app, env)
        where = f"{app}/{env}"
        if to_version is None and self._active(app, env):
            return await self.abort(app, env)
        book = self._book(app, env)
        target = book.rollback_target(where, to_version)
        manifest = state.manifest
        site = target["site"]
        if site is not None and manifest.site is not None:
            self._check_site_kept(where, manifest.site_name(env), site["version"], target["id"])
        await self._stop_releases(app, env_only=env, reason=f"rolled back by request in {where}")
        mover = self._mover(app, env)
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
        return await self._outcome(app, env, running)

    async def abort(self, app: str, env: str) -> dict[str, Any]:
        """Stop the running releases of ``env`` and roll them back."""
        running = self._require_active(app, env)
        for item in running:
            item.control.abort("by request")
        return await self._outcome(app, env, running)

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
        running = self._running.get(key)
        if running is not None and running.release.target == version:
            running.sinks.append(log or _ignore)
            return await self._join(running)
        if running is not None:
            running.control.abort(f"superseded by version {version}")
            await asyncio.gather(running.task, return_exceptions=True)
        name = state.manifest.function_name(function)
        current = self._mover(app, env).read(name, env)
        release = plan_release(
            app=app,
            environment=env,
            function=function,
            function_name=name,
            policy=environment.release,
            target=version,
            previous=_previous(current, version),
            execution_id=execution_id,
            now=self._clock(),
            published=published,
        )
        book = self._book(app, env)
        if serves_only(current, version):
            release.state, release.ended = ReleaseState.PROMOTED, release.started
            release.detail = f"version {version} already serves all of {env}"
            release.percent = 100
            book.put(release)
            book.record("deploy", execution_id=execution_id, functions={function: version})
            (log or _ignore)(f"{name}:{env}: {release.detail}")
            return release
        self._note_baseline(app, env, function, release.previous)
        book.put(release)
        return await self._join(self._start(release, [log or _ignore]))

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
        self._book(app, env).record(
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

    # ------------------------------------------------------------------------ release plumbing

    def _start(self, release: Release, sinks: list[LogSink]) -> _Running:
        app, env = release.app, release.environment
        control = ReleaseControl()
        token, watcher = self._recorder.watch(app, env)
        running: _Running | None = None

        def log(text: str) -> None:
            for sink in list(running.sinks if running else sinks):
                sink(text)

        deps = ReleaseDeps(
            mover=self._mover(app, env),
            metrics=watcher,
            hooks=_ShellHooks(self, log),
            routes=_Routes(self),
            save=self._book(app, env).put,
            log=log,
        )

        async def run() -> Release:
            try:
                finished = await ReleaseRunner(deps).run(release, control)
            finally:
                self._recorder.unwatch(token)
                if self._running.get(key) is running:
                    del self._running[key]
            if finished.state == ReleaseState.PROMOTED:
                self._book(app, env).record(
                    "deploy",
                    execution_id=finished.execution_id,
                    functions={finished.function: finished.target},
                )
            return finished

        key = (app, env, release.function)
        running = _Running(release, control, asyncio.get_running_loop().create_task(run()), sinks)
        self._running[key] = running
        return running

    async def _join(self, running: _Running) -> Release:
        """Wait for a release; a cancelled waiter (the deploy action stopped) aborts it."""
        try:
            return await asyncio.shield(running.task)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                running.control.abort("the deploy action was stopped before the release ended")
                await asyncio.gather(running.task, return_exceptions=True)
                raise
            raise CaravanError(
                f"the platform closed while releasing version {running.release.target} to "
                f"{running.release.environment}; the release resumes when caravan restarts"
            ) from None

    def _note_baseline(self, app: str, env: str, function: str, version: str | None) -> None:
        """Note the version an environment served before caravan released to it (an alias
        set by hand or through the Lambda API), so that a rollback can return to it."""
        book = self._book(app, env)
        current = book.current()
        if version is None or (current is not None and current["functions"].get(function)):
            return
        book.record("baseline", functions={function: version})

    def _active(self, app: str, env: str) -> list[_Running]:
        return [r for (a, e, _), r in self._running.items() if a == app and e == env]

    def _require_active(self, app: str, env: str) -> list[_Running]:
        self._environment(app, env)
        running = self._active(app, env)
        if not running:
            raise ConflictError(f"no release is in progress in {app}/{env}")
        return running

    async def _outcome(self, app: str, env: str, running: Sequence[_Running]) -> dict[str, Any]:
        await asyncio.gather(*(r.task for r in running), return_exceptions=True)
        return {
            "app": app,
            "environment": env,
            "releases": [r.release.summary() for r in running],
        }

    async def _stop_releases(self, app: str, reason: str, *, env_only: str | None = None) -> None:
        running = [
            r for (a, e, _), r in self._running.items() if a == app and env_only in (None, e)
        ]
        for item in running:
            item.control.abort(reason)
        await asyncio.gather(*(r.task for r in running), return_exceptions=True)

    def _book(self, app: str, env: str) -> ReleaseBook:
        book = self._books.get((app, env))
        if book is None:
            book = ReleaseBook(self.root / "releases" / f"{app}-{env}.json", clock=self._clock)
            self._books[(app, env)] = book
        return book

    def _mover(self, app: str, env: str) -> AliasMover:
        return AliasMover(self.functions, self._book(app, env), clock=self._clock)

    @staticmethod
    def _clock() -> float:
        return time.time()

    # --------------------------------------------------------------------------- green hosts

    def open_green(self, release: Release) -> str:
        """Serve the release's version alone at ``green.<environment host>``."""
        state = self._app(release.app)
        environment = self._environment(release.app, release.environment)
        host = GREEN_PREFIX + self._hosts(environment)[0]
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
            self._green[host] = HostRoute(
                host,
                site=site,
                api=release.app if api is not None else None,
                stage=stage if api is not None else None,
            )
            self._sync_routes()
        return self._host_url(host)

    def close_green(self, release: Release) -> None:
        self._close_greens(release.app, release.environment)

    def _close_greens(self, app: str, env: str) -> None:
        state = self._apps.get(app)
        if state is None or env not in state.manifest.environments:
            return
        host = GREEN_PREFIX + self._hosts(state.manifest.environments[env])[0]
        if self._green.pop(host, None) is not None:
            self._sync_routes()
        self._delete_stage(app, f"{env}-green")

    # ----------------------------------------------------------------------------- internals

    def _restore(self) -> None:
        for path in sorted((self.root / "apps").glob("*.json")):
            try:
                state = _App.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError, CaravanError) as exc:
                _log.warning("cannot restore the app in %s: %s", path, exc)
                continue
            self._apps[state.manifest.app] = state
            if not state.down:
                self._sync_stages(state)
        self._sync_routes()
        for name in self.apps():
            for env in self._apps[name].manifest.environments:
                for release in self._book(name, env).active():
                    self._start(release, [])

    def _sync_stages(self, state: _App) -> list[str]:
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

    def _purge(self, state: _App) -> list[str]:
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
            self._books.pop((manifest.app, env), None)
            book = self.root / "releases" / f"{manifest.app}-{env}.json"
            if book.is_file():
                book.unlink()
                changes.append(f"deleted the release history of {env}")
        data = self.root / "data" / manifest.app
        if data.is_dir():
            shutil.rmtree(data, ignore_errors=True)
            changes.append(f"deleted the data directory {data}")
        (self.root / "apps" / f"{manifest.app}.json").unlink(missing_ok=True)
        del self._apps[manifest.app]
        return changes

    def _delete_stage(self, app: str, stage: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.gateway.delete_stage(app, stage)

    def _check_hosts(self, manifest: AppManifest) -> None:
        mine = {h for e in manifest.environments.values() for h in self._hosts(e)}
        for name, state in self._apps.items():
            if name == manifest.app or state.down:
                continue
            for environment in state.manifest.environments.values():
                taken = mine & set(self._hosts(environment))
                if taken:
                    raise ConflictError(
                        f"host {sorted(taken)[0]} is already a host of app {name!r}",
                        hint=f"take {name} down first, or choose other hosts",
                    )

    def _routes(self) -> list[HostRoute]:
        routes = list(self._green.values())
        for name in self.apps():
            manifest = self._apps[name].manifest
            for env, environment in manifest.environments.items():
                site = manifest.site_name(env) if manifest.site is not None else None
                api = name if manifest.api is not None else None
                if site is None and api is None:
                    continue
                for host in self._hosts(environment):
                    routes.append(
                        HostRoute(host, site=site, api=api, stage=env if api is not None else None)
                    )
        return routes

    def _sync_routes(self) -> None:
        routes = self._routes()
        for router in self._routers:
            router.set_routes(routes)

    def _save_app(self, state: _App) -> None:
        write_json(self.root / "apps" / f"{state.manifest.app}.json", state.to_json())

    def _app(self, app: str) -> _App:
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

    @staticmethod
    def _hosts(environment: Environment) -> list[str]:
        return list(environment.hosts or ())

    def _host_url(self, host: str) -> str:
        public = urlsplit(self.public_url)
        scheme = public.scheme or "http"
        return f"{scheme}://{host}:{public.port}" if public.port else f"{scheme}://{host}"

    def _environment_status(self, state: _App, env: str) -> dict[str, Any]:
        manifest = state.manifest
        environment = manifest.environments[env]
        aliases = []
        for function in manifest.functions:
            name = manifest.function_name(function)
            record = self._mover(manifest.app, env).read(name, env)
            versions = []
            if record is not None:
                share = 1.0 - sum(record.weights.values())
                versions.append({"version": record.function_version, "weight": round(share, 6)})
                versions += [{"version": v, "weight": w} for v, w in record.weights.items()]
            aliases.append({"function": name, "alias": env, "versions": versions})
        site = None
        if manifest.site is not None:
            try:
                current = self.sites.current(manifest.site_name(env))
            except CaravanError:
                current = None
            if current is not None:
                site = {"version": current.version_id, "label": current.label}
        return {
            "name": env,
            "urls": [self._host_url(host) for host in self._hosts(environment)],
            "aliases": aliases,
            "site": site,
            "release": self._release_status(manifest.app, env),
        }

    def _release_status(self, app: str, env: str) -> dict[str, Any]:
        releases = sorted(self._book(app, env).releases.values(), key=lambda r: r.started)
        if not releases:
            return {"state": "idle", "detail": "nothing released yet", "releases": []}
        active = [r for r in releases if r.active]
        shown = active[-1] if active else releases[-1]
        return {
            "state": str(shown.state),
            "detail": shown.detail,
            "releases": [r.summary() for r in releases],
        }


class _Routes:
    """The addresses a release needs, from the platform (releases.ReleaseRoutes)."""

    def __init__(self, platform: LocalPlatform) -> None:
        self.platform = platform

    def environment_url(self, release: Release) -> str:
        return self.platform.environment_url(release.app, release.environment)

    def open_green(self, release: Release) -> str:
        return self.platform.open_green(release)

    def close_green(self, release: Release) -> None:
        self.platform.close_green(release)


class _ShellHooks:
    """Release hooks: shell commands in the app's repository with TARGET_URL set, run like any
    user command (scrubbed environment, process group stopped at the end)."""

    def __init__(self, platform: LocalPlatform, log: LogSink) -> None:
        self.platform = platform
        self.log = log

    async def __call__(
        self, phase: str, commands: Sequence[str], target_url: str, release: Release
    ) -> str | None:
        from caravan.actions.process import run_process, scrubbed_environment

        repo = self.platform._apps[release.app].repo_dir
        with tempfile.TemporaryDirectory(prefix="caravan-hook-") as scratch:
            cwd = repo if repo.is_dir() else Path(scratch)
            env = scrubbed_environment(
                {
                    **self.platform.command_environment(),
                    "TARGET_URL": target_url,
                    "RELEASE_VERSION": release.target,
                    "RELEASE_PREVIOUS_VERSION": release.previous or "",
                    "RELEASE_ENVIRONMENT": release.environment,
                },
                home=Path(scratch) / "home",
            )
            for command in commands:
                self.log(f"{phase} hook: {command} (TARGET_URL={target_url})")
                result = await run_process(
                    ["/bin/sh", "-c", command],
                    cwd=cwd,
                    env=env,
                    on_output=lambda line: self.log(f"  {line}"),
                    timeout=HOOK_TIMEOUT_S,
                )
                if result.timed_out:
                    return f"{phase} hook `{command}` timed out after {HOOK_TIMEOUT_S:g} s"
                if result.exit_code != 0:
                    last = result.output_tail.strip().splitlines()[-1:] or [""]
                    detail = f": {last[0]}" if last[0] else ""
                    status = result.exit_code
                    return f"{phase} hook `{command}` failed with exit status {status}{detail}"
        return None


def _origin_form(scope: Scope) -> Scope:
    """A proxy-style absolute target (``http://host/path``) as the plain path it names."""
    path: str = scope["path"]
    if not path.startswith(("http://", "https://")):
        return scope
    target = urlsplit(path)
    clean = target.path or "/"
    return {**scope, "path": clean, "raw_path": clean.encode("latin-1")}


def _differences(before: Environment, after: Environment) -> str:
    names = {
        "hosts": "hosts",
        "stage_variables": "stageVariables",
        "data": "data",
        "release": "release",
    }
    changed = [label for key, label in names.items() if getattr(before, key) != getattr(after, key)]
    return ", ".join(changed) or "settings"


def _previous(current: AliasRecord | None, target: str) -> str | None:
    """The version a release shifts traffic away from: the alias's primary, or (when an
    interrupted split left the target as primary) the other version it routes to."""
    if current is None:
        return None
    others = [v for v in current.versions() if v != target]
    return others[0] if others else None


def _ignore(_text: str) -> None:
    return None
