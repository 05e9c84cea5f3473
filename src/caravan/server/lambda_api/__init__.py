"""The Lambda API subset (REST JSON, for boto3 and the AWS CLI) over the platform's functions.

``lambda_app(registry, invoker, artifacts=None)`` is the ASGI app; it serves the paths under
``PREFIX`` (``/2015-03-31/functions``). See app.py for the request flow and routes.py for the
operations; ``starlette_routes(app)`` mounts it in a Starlette app.
"""

from caravan.server.lambda_api.app import LambdaApp, lambda_app, starlette_routes
from caravan.server.lambda_api.routes import PREFIX, ROUTES

__all__ = ["PREFIX", "ROUTES", "LambdaApp", "lambda_app", "starlette_routes"]
