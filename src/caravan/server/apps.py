"""The native API of apps: ``POST /api/apps/{Operation}`` over the local platform and the engine.

An app is what a ``caravan.yml`` declares: functions, API, site, environments (the platform's
part) and the pipeline that delivers them (the engine's part). These operations keep both in
step, the way the seed's gulp ``pipeline:up``/``down`` drove its one CloudFormation stack:

    Up        {manifest, directory, serverUrl?}  create or update the environments, then the
              pipeline (CreatePipeline, or UpdatePipeline only when the declaration changed,
              with ``declarationDir`` = directory), then the git hooks in the directory
    Down      {app, pipeline?, directory?, purge?} remove what exists of it, in any state
    List      {}                                  {"apps": [...]}
    Status    {app}                               LocalPlatform.app_status
    Rollback  {app, environment, toVersion?}      LocalPlatform.rollback
    Promote   {app, environment}                  LocalPlatform.promote
    Abort     {app, environment}                  LocalPlatform.abort

Errors are ``CaravanError.to_dict()`` with the error's HTTP status, as on the rest of the native
API: a bad manifest is a ``ManifestError`` listing every issue with its path.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from caravan.engine.api import EngineAPI
from caravan.errors import (
    CaravanError,
    InvalidInputError,
    NotFoundError,
    PipelineNotFoundError,
    ServerUnavailableError,
)
from caravan.hooks.install import HOOKS, hook_script, hooks_dir, install_hooks, uninstall_hooks
from caravan.model.manifest import AppManifest, load_manifest
from caravan.server.dashboard import AliasView, EnvironmentView, VersionMetrics
from caravan.server.native import (
    engine_of,
    error_response,
    internal_error,
    json_response,
    parse_request,
    read_body,
)

MANIFEST_NAME = "caravan.yml"


class AppPlatform(Protocol):
    """What these routes need of ``caravan.platform.local.LocalPlatform``."""

    public_url: str

    async def up(self, manifest: AppManifest, *, repo_dir: Path) -> list[str]: ...
    async def down(self, app: str, *, purge: bool = False) -> list[str]: ...
    def apps(self) -> list[str]: ...
    def app_status(self, app: str) -> dict[str, Any]: ...
    def app_for_pipeline(self, pipeline: str) -> tuple[AppManifest, Path] | None: ...
    async def rollback(self, app: str, env: str, *, to_version: str | None = None) -> Any: ...
    async def promote(self, app: str, env: str) -> Any: ...
    async def abort(self, app: str, env: str) -> Any: ...


class NoPlatformError(ServerUnavailableError):
    reference = "no-platform"


Operation = Callable[[AppPlatform, EngineAPI, dict[str, Any], Request], Awaitable[Any]]


def platform_of(request: Request) -> AppPlatform:
    platform: AppPlatform | None = getattr(request.app.state, "platform", None)
    if platform is None:
        raise NoPlatformError(
            "this server runs no local platform, so it has no apps",
            hint="apps are served by `caravan server` (or `caravan demo`)",
        )
    return platform


def _text(body: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"'{key}' is required and must be a non-empty string")
    return value


def _directory(body: Mapping[str, Any], *, required: bool = True) -> Path | None:
    raw = _text(body, "directory", required=required)
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_absolute():
        raise InvalidInputError(f"directory {raw!r} must be an absolute path")
    if required and not path.is_dir():
        raise InvalidInputError(f"directory {raw} does not exist")
    return path


# Up -------------------------------------------------------------------------------------------


async def up(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> dict[str, Any]:
    directory = _directory(body)
    assert directory is not None  # required above; narrows the type
    text = _text(body, "manifest")
    manifest = load_manifest(str(text), source=str(directory / MANIFEST_NAME))
    server_url = _text(body, "serverUrl", required=False) or str(request.base_url).rstrip("/")
    changes = list(await platform.up(manifest, repo_dir=directory))
    pipeline, execution_id = await _apply_pipeline(engine, manifest, directory)
    if pipeline:
        changes.append(pipeline)
    hooks = await anyio.to_thread.run_sync(_install_hooks, directory, server_url)
    if hooks:
        changes.append(hooks)
    return {
        "app": manifest.app,
        "pipeline": manifest.pipeline.pipeline.name,
        "changes": changes,
        "pipelineExecutionId": execution_id,
        "environments": platform.app_status(manifest.app).get("environments", []),
    }


def pipeline_request(manifest: AppManifest, directory: Path) -> dict[str, Any]:
    request: dict[str, Any] = manifest.pipeline.to_request()
    request["declarationDir"] = str(directory)
    return request


def _comparable(declaration: Mapping[str, Any]) -> dict[str, Any]:
    # GetPipeline numbers each version; the declaration itself is what `up` compares.
    return {k: v for k, v in declaration.items() if k != "version"}


async def _apply_pipeline(
    engine: EngineAPI, manifest: AppManifest, directory: Path
) -> tuple[str | None, str | None]:
    """Create the app's pipeline, or update it when its declaration or directory changed.
    What was done (None: nothing) and the execution CreatePipeline started."""
    request = pipeline_request(manifest, directory)
    name = request["pipeline"]["name"]
    try:
        current = await engine.call("GetPipeline", {"name": name})
    except PipelineNotFoundError:
        await engine.call("CreatePipeline", request)
        listed = await engine.call(
            "ListPipelineExecutions", {"pipelineName": name, "maxResults": 1}
        )
        summaries = listed.get("pipelineExecutionSummaries") or [{}]
        execution_id = summaries[0].get("pipelineExecutionId")
        started = f"; its first execution {execution_id} has started" if execution_id else ""
        return f"created pipeline {name}{started}", execution_id
    same_declaration = _comparable(current.get("pipeline", {})) == _comparable(request["pipeline"])
    same_directory = (current.get("metadata") or {}).get("declarationDir") == str(directory)
    if same_declaration and same_directory:
        return None, None
    answer = await engine.call("UpdatePipeline", request)
    version = answer.get("pipeline", {}).get("version")
    return f"updated pipeline {name} to version {version}", None


def _install_hooks(directory: Path, url: str) -> str | None:
    """Install the git hooks unless they are in place already; what changed, for the user."""
    try:
        where = hooks_dir(directory)
    except InvalidInputError:
        return f"no git hooks: {directory} is not a git repository (commits will not trigger)"
    wanted = {name: hook_script(name, url) for name in HOOKS}
    if all(_read(where / name) == text for name, text in wanted.items()):
        return None
    install_hooks(directory, url)
    return f"installed git hooks in {directory} ({', '.join(HOOKS)}) notifying {url}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


# Down -----------------------------------------------------------------------------------------


async def down(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> dict[str, Any]:
    """Remove whatever exists of the app: a half-created app (environments without a pipeline,
    or the reverse) comes down as well as a whole one."""
    app = str(_text(body, "app"))
    purge = bool(body.get("purge", False))
    known = app in platform.apps()
    status = platform.app_status(app) if known else {}
    pipeline = status.get("pipeline") or _text(body, "pipeline", required=False) or app
    directory = _directory(body, required=False)
    changes: list[str] = []
    try:
        got = await engine.call("GetPipeline", {"name": pipeline})
    except PipelineNotFoundError:
        got = None
    if got is not None:
        await engine.call("DeletePipeline", {"name": pipeline})
        changes.append(f"deleted pipeline {pipeline}")
        declared = (got.get("metadata") or {}).get("declarationDir")
        directory = directory or (Path(declared) if declared else None)
    if known:
        found = platform.app_for_pipeline(pipeline)
        directory = directory or (found[1] if found else None)
        changes.extend(await platform.down(app, purge=purge))
    if directory is not None:
        removed = await anyio.to_thread.run_sync(_uninstall_hooks, directory)
        if removed:
            changes.append(removed)
    if not known and got is None:
        raise NotFoundError(
            f"no app {app!r} on this server (apps: {', '.join(platform.apps()) or 'none'})"
        )
    return {"app": app, "pipeline": pipeline, "changes": changes, "purged": purge}


def _uninstall_hooks(directory: Path) -> str | None:
    try:
        changes = uninstall_hooks(directory)
    except InvalidInputError:
        return None  # not (or no longer) a git repository: no hooks to take out
    removed = [c for c in changes if c.outcome.startswith("removed")]
    return f"removed git hooks from {directory}" if removed else None


# The rest -------------------------------------------------------------------------------------


async def list_apps(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> dict[str, Any]:
    return {"apps": sorted(platform.apps())}


async def status(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> dict[str, Any]:
    app = str(_text(body, "app"))
    if app not in platform.apps():
        raise NotFoundError(
            f"no app {app!r} on this server (apps: {', '.join(platform.apps()) or 'none'})"
        )
    return platform.app_status(app)


def _where(body: Mapping[str, Any]) -> tuple[str, str]:
    return str(_text(body, "app")), str(_text(body, "environment"))


async def rollback(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> Any:
    app, env = _where(body)
    return await platform.rollback(app, env, to_version=_text(body, "toVersion", required=False))


async def promote(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> Any:
    return await platform.promote(*_where(body))


async def abort(
    platform: AppPlatform, engine: EngineAPI, body: dict[str, Any], request: Request
) -> Any:
    return await platform.abort(*_where(body))


OPERATIONS: dict[str, Operation] = {
    "Up": up,
    "Down": down,
    "List": list_apps,
    "Status": status,
    "Rollback": rollback,
    "Promote": promote,
    "Abort": abort,
}


async def call_app_operation(request: Request) -> Response:
    operation = request.path_params["operation"]
    try:
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise InvalidInputError(
                f"unknown app operation {operation!r}; this server answers: "
                + ", ".join(OPERATIONS)
            )
        body = parse_request(await read_body(request))
        result = await handler(platform_of(request), engine_of(request), body, request)
        return json_response(result)
    except CaravanError as error:
        return error_response(error)
    except Exception:
        return error_response(internal_error(f"app operation {operation}"))


routes = [Route("/api/apps/{operation}", call_app_operation, methods=["POST"])]


# The dashboard's view of the apps -------------------------------------------------------------

SERIES_POINTS = 300  # about five minutes of the chart at one point a second
SERIES_STEP_SECONDS = 1.0


class PlatformEnvironments:
    """The dashboard's ``EnvironmentSource`` over the platform: each app environment with the
    versions behind its aliases, and their error rate and latency from the API front's metrics.
    The chart's series is sampled when the page is drawn (at most once a second per version)."""

    def __init__(self, platform: Any, clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self._clock = clock
        self._series: dict[tuple[str, str], list[tuple[float, float, float]]] = {}

    def environments(self) -> list[EnvironmentView]:
        views = []
        for app in sorted(self.platform.apps()):
            for env in self.platform.app_status(app).get("environments", []):
                aliases = [
                    AliasView(
                        function=alias["function"],
                        alias=alias["alias"],
                        versions=[
                            (str(v["version"]), float(v["weight"])) for v in alias["versions"]
                        ],
                    )
                    for alias in env.get("aliases", [])
                ]
                several = len(aliases) > 1  # then a version is named with its function
                metrics = [
                    self._metrics(alias.function, version, several)
                    for alias in aliases
                    for version, _ in alias.versions
                ]
                views.append(
                    EnvironmentView(
                        app=app,
                        name=env["name"],
                        urls=list(env.get("urls", [])),
                        aliases=aliases,
                        metrics=metrics,
                    )
                )
        return views

    def _metrics(self, function: str, version: str, named: bool) -> VersionMetrics:
        stats = self.platform.metrics.stats(function, version)
        error_rate = stats.error_rate or 0.0
        p99 = stats.p99_ms or 0.0
        series = self._series.setdefault((function, version), [])
        now = self._clock()
        if not series or now - series[-1][0] >= SERIES_STEP_SECONDS:
            series.append((now, error_rate, p99))
            del series[:-SERIES_POINTS]
        return VersionMetrics(
            version=f"{function}:{version}" if named else version,
            requests=stats.requests,
            error_rate=error_rate,
            p50_ms=stats.p50_ms or 0.0,
            p99_ms=p99,
            series=list(series),
        )
