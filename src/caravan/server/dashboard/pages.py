"""The dashboard's pages (GET): pipelines, a pipeline's board, its executions, one execution,
an action's log, and the environments.

Each page is drawn from its view's fragments (fragments.py) and names the live stream that keeps
those fragments current. A ``CaravanError`` becomes an error page with its message and hint; any
other exception is logged and shown as an internal error, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from caravan.errors import CaravanError
from caravan.server.dashboard.fragments import View
from caravan.server.dashboard.history import load_log
from caravan.server.dashboard.render import Fragment, events_url, pipeline_url
from caravan.server.dashboard.state import Dashboard, internal_error

Handler = Callable[[Dashboard, Request], Awaitable[Response]]


def page_handler(handler: Handler) -> Handler:
    """``handler``, with errors drawn as error pages."""

    @wraps(handler)
    async def guarded(dashboard: Dashboard, request: Request) -> Response:
        try:
            return await handler(dashboard, request)
        except CaravanError as error:
            return dashboard.error_page(error, back=_back(request))
        except Exception:
            return dashboard.error_page(internal_error(f"GET {request.url.path}"))

    return guarded


def _back(request: Request) -> str:
    name = request.path_params.get("name")
    if name and request.url.path != pipeline_url(name):
        return pipeline_url(name)
    return "/"


async def _fragments(dashboard: Dashboard, request: Request, view: View) -> list[Fragment]:
    engine = dashboard.engine(request)
    return await dashboard.fragments.of(view, engine, dashboard.environments(request))


@page_handler
async def pipelines_page(dashboard: Dashboard, request: Request) -> Response:
    fragments = await _fragments(dashboard, request, View("pipelines"))
    return dashboard.page("pipelines.html", fragments=fragments, events=events_url("pipelines"))


@page_handler
async def pipeline_page(dashboard: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    fragments = await _fragments(dashboard, request, View("pipeline", name))
    # The pipeline view's fragments come as: controls, one per stage in order, history.
    return dashboard.page(
        "pipeline.html",
        name=name,
        controls=fragments[0],
        stages=fragments[1:-1],
        history=fragments[-1],
        events=events_url("pipeline", name),
    )


@page_handler
async def executions_page(dashboard: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    view = View("executions", name, next_token=request.query_params.get("nextToken", ""))
    fragments = await _fragments(dashboard, request, view)
    events = events_url("executions", name) if view.live else ""
    return dashboard.page("executions.html", name=name, fragments=fragments, events=events)


@page_handler
async def execution_page(dashboard: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    execution = request.path_params["execution_id"]
    fragments = await _fragments(dashboard, request, View("execution", name, execution))
    return dashboard.page(
        "execution.html",
        name=name,
        execution=execution,
        fragments=fragments,
        events=events_url("execution", name, execution),
    )


@page_handler
async def log_page(dashboard: Dashboard, request: Request) -> Response:
    action_execution_id = request.path_params["action_execution_id"]
    pipeline = request.query_params.get("pipeline", "")
    execution = request.query_params.get("execution", "")
    log = await load_log(dashboard.engine(request), action_execution_id, pipeline, execution)
    context = {"offset": log.next_offset, "pipeline": pipeline, "execution": execution}
    query = urlencode({k: v for k, v in context.items() if v != ""})
    stream = f"/ui/logs/{quote(action_execution_id, safe='')}?{query}"
    return dashboard.page("log.html", log=log, stream=stream)


@page_handler
async def environments_page(dashboard: Dashboard, request: Request) -> Response:
    fragments = await _fragments(dashboard, request, View("environments"))
    return dashboard.page(
        "environments.html", fragments=fragments, events=events_url("environments")
    )
