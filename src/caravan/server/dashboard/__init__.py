"""The live web dashboard: server-rendered pages, a small script, and Server-Sent Events.

    app.router.routes.extend(dashboard_routes())       # engine from app.state.engine
    app.state.environment_source = source              # optional: the environments page

See routes.py for the pages and endpoints, security.py for how forms are protected, and
docs/dashboard.md for what a user sees.
"""

from caravan.server.dashboard.environments import (
    AliasView,
    EnvironmentSource,
    EnvironmentView,
    VersionMetrics,
)
from caravan.server.dashboard.routes import dashboard_routes

__all__ = [
    "AliasView",
    "EnvironmentSource",
    "EnvironmentView",
    "VersionMetrics",
    "dashboard_routes",
]
