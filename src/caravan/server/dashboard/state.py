"""What every dashboard handler shares: the engine, the form guard, the renderer, the
environment source, and the way pages and errors become responses.

The engine is the one given to ``dashboard_routes`` or, when none was (``caravan server`` opens
its engine only at start-up), the app's ``state.engine`` at request time. The environment source
works the same way with ``state.environment_source``, so whoever assembles the server can wire
it after the routes exist.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from caravan.engine.api import EngineAPI
from caravan.errors import CaravanError
from caravan.server.dashboard.environments import EnvironmentSource
from caravan.server.dashboard.fragments import Fragments
from caravan.server.dashboard.render import Renderer
from caravan.server.dashboard.security import FormGuard

logger = logging.getLogger("caravan.server.dashboard")

# Pages load only this origin's files; no inline script can run even if escaping ever failed,
# and no other site may frame the buttons (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Dashboard:
    def __init__(
        self,
        engine: EngineAPI | None = None,
        environments: EnvironmentSource | None = None,
        guard: FormGuard | None = None,
    ) -> None:
        self.guard = guard or FormGuard()
        self.renderer = Renderer(self.guard)
        self.fragments = Fragments(self.renderer)
        self._engine = engine
        self._environments = environments

    def engine(self, request: Request) -> EngineAPI:
        if self._engine is not None:
            return self._engine
        engine: EngineAPI = request.app.state.engine
        return engine

    def environments(self, request: Request) -> EnvironmentSource | None:
        if self._environments is not None:
            return self._environments
        source: EnvironmentSource | None = getattr(request.app.state, "environment_source", None)
        return source

    def page(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("events", "")
        html = self.renderer.render(template, **context)
        return HTMLResponse(str(html), status_code=status, headers=SECURITY_HEADERS)

    def error_page(self, error: CaravanError, *, back: str = "/") -> HTMLResponse:
        return self.page(
            "error.html",
            status=error.http_status,
            title=_title(error),
            message=error.message,
            hint=error.hint or "",
            reference=error.reference,
            back=back,
        )


def _title(error: CaravanError) -> str:
    if error.http_status == 404:
        return "Not found"
    if error.http_status == 409:
        return "Not possible right now"
    if error.http_status in (400, 413):
        return "Bad request"
    if error.http_status == 403:
        return "Refused"
    return "Error"


def internal_error(context: str) -> CaravanError:
    """Log the exception being handled (with its traceback, for the server log only) and
    return the error a user sees instead."""
    logger.exception("unexpected error in the dashboard (%s)", context)
    error = CaravanError("internal error in the caravan dashboard (the server log has the details)")
    error.reference = "internal-error"
    return error
