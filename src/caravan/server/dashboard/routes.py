"""The dashboard's routes, to mount beside the API in one Starlette app.

    GET  /                                       pipelines and their latest executions
    GET  /pipelines/{name}                       the board: stages, actions, transitions, buttons
    GET  /pipelines/{name}/executions            execution history (``?nextToken=`` for older)
    GET  /pipelines/{name}/executions/{id}       one execution: stages, actions, variables, errors
    GET  /actions/{actionExecutionId}/log        an action's log, followed live until it ends
    GET  /environments                           apps' environments: aliases, weights, metrics
    POST /pipelines/{name}/{start|stop|retry|approval|transition}     the buttons (forms.py)
    GET  /ui/events?view=...                     live fragments (SSE, live.py)
    GET  /ui/logs/{actionExecutionId}?offset=N   a log as it grows (SSE, live.py)
    GET  /ui/static/...                          the stylesheet and the page script

``GET /`` shares its path with the AWS JSON endpoint's ``POST /``: Starlette picks the route
whose method matches, so both can be mounted in either order.
"""

from __future__ import annotations

from functools import partial

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from caravan.engine.api import EngineAPI
from caravan.server.dashboard import forms, live, pages
from caravan.server.dashboard.environments import EnvironmentSource
from caravan.server.dashboard.render import STATIC, STATIC_PREFIX
from caravan.server.dashboard.security import FormGuard
from caravan.server.dashboard.state import Dashboard


def dashboard_routes(
    engine: EngineAPI | None = None,
    *,
    environments: EnvironmentSource | None = None,
    guard: FormGuard | None = None,
) -> list[BaseRoute]:
    """The dashboard's routes over ``engine`` (None: the app's ``state.engine`` at request
    time, as ``caravan server`` sets it once the engine is open) and ``environments`` (None:
    the app's ``state.environment_source``, or no apps deployed)."""
    dashboard = Dashboard(engine, environments, guard)

    def page(path: str, handler: pages.Handler) -> Route:
        return Route(path, partial(handler, dashboard), methods=["GET"])

    def form(verb: str) -> Route:
        endpoint = partial(forms.submit, dashboard, verb)
        return Route(f"/pipelines/{{name}}/{verb}", endpoint, methods=["POST"])

    return [
        page("/", pages.pipelines_page),
        page("/environments", pages.environments_page),
        page("/pipelines/{name}", pages.pipeline_page),
        page("/pipelines/{name}/executions", pages.executions_page),
        page("/pipelines/{name}/executions/{execution_id}", pages.execution_page),
        page("/actions/{action_execution_id}/log", pages.log_page),
        *(form(verb) for verb in forms.ACTS),
        Route("/ui/events", partial(live.fragment_events, dashboard), methods=["GET"]),
        Route(
            "/ui/logs/{action_execution_id}",
            partial(live.log_events, dashboard),
            methods=["GET"],
        ),
        Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
