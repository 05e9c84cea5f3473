"""The one-port front: which app answers each request that reaches ``caravan server``.

Everything is served on one port, the way a local AWS emulator's edge port works. Each HTTP
request goes, in this order, to:

1. the platform's front (``LocalPlatform.front``) when its Host header names an app environment
   (``test.dromedary.localhost``, with or without ``:port``): the site, and the API under
   ``/api``. The front also answers path-style stage URLs ``/apis/{api}/{stage}/...``;
2. an AWS API picked by the request's SigV4 credential scope (``Authorization: AWS4-HMAC-SHA256
   Credential=AKID/date/region/<service>/aws4_request`` or a presigned URL's
   ``X-Amz-Credential``): ``s3`` (and legacy SigV2, which only S3 speaks) to the S3 API over the
   engine's artifact store, ``lambda`` to the Lambda API; ``X-Amz-Target:
   CodePipeline_20150709.*`` to the AWS JSON 1.1 endpoint (``POST /``);
3. the Lambda API for paths under ``/2015-03-31/functions``, signed or not;
4. the server's own routes for everything else: the native API, events, webhooks, dashboard.

``Edge`` is an ASGI middleware around the server's router. Its targets (``EdgeTargets``) are
filled in when the services open at lifespan startup, so the app can be built before the engine
and the platform exist; until then every request goes to the server's own routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.server.lambda_api import PREFIX as LAMBDA_PREFIX

CODEPIPELINE_TARGET = "CodePipeline_20150709."
AWS_JSON_PATH = "/"

Target = Literal["s3", "lambda", "aws-json", "server"]

# "Credential=AKID/20250101/us-east-1/s3/aws4_request" (header) or the same as a query value.
_SCOPE = re.compile(r"^[^/]*/\d{8}/[^/]*/([A-Za-z0-9-]+)/aws4_request$")
_HEADER_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")

FrontFactory = Callable[[ASGIApp], ASGIApp]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


def signed_service(scope: Scope) -> str | None:
    """The AWS service a request is signed for: SigV4's credential scope (header or presigned
    query), ``"s3"`` for SigV2 (only S3 still speaks it), None when unsigned."""
    authorization = _header(scope, b"authorization")
    if authorization is not None:
        if authorization.startswith("AWS4-HMAC-SHA256"):
            match = _HEADER_CREDENTIAL.search(authorization)
            return _service_of(match.group(1)) if match else None
        if authorization.startswith("AWS "):
            return "s3"
        return None
    query = scope.get("query_string", b"")
    if b"X-Amz-Credential" in query or b"AWSAccessKeyId" in query:
        params = parse_qs(query.decode("latin-1"))
        if "X-Amz-Credential" in params:
            return _service_of(params["X-Amz-Credential"][0])
        return "s3"
    return None


def _service_of(credential: str) -> str | None:
    match = _SCOPE.match(credential)
    return match.group(1).lower() if match else None


def classify(scope: Scope) -> Target:
    """Which AWS API (or the server's own routes) a request not claimed by an app host is for."""
    service = signed_service(scope)
    if service == "s3":
        return "s3"
    if service == "lambda":
        return "lambda"
    target = _header(scope, b"x-amz-target")
    if target is not None and target.startswith(CODEPIPELINE_TARGET):
        return "aws-json"
    path: str = scope.get("path", "")
    if path == LAMBDA_PREFIX or path.startswith(LAMBDA_PREFIX + "/"):
        return "lambda"
    return "server"


@dataclass
class EdgeTargets:
    """The apps behind the edge; ``attach`` them once they exist (at lifespan startup)."""

    front: FrontFactory | None = None  # LocalPlatform.front: app hosts, then the fallback given
    s3: ASGIApp | None = None
    lambda_api: ASGIApp | None = None
    generation: int = field(default=0, compare=False)

    def attach(
        self,
        *,
        front: FrontFactory | None = None,
        s3: ASGIApp | None = None,
        lambda_api: ASGIApp | None = None,
    ) -> None:
        self.front, self.s3, self.lambda_api = front, s3, lambda_api
        self.generation += 1

    def detach(self) -> None:
        self.attach()


class Edge:
    """ASGI middleware: route each request to an app host, an AWS API, or ``app``."""

    def __init__(self, app: ASGIApp, targets: EdgeTargets) -> None:
        self.app = app
        self.targets = targets
        self._built = -1
        self._chain: ASGIApp = self._aws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets belong to the server itself
            await self.app(scope, receive, send)
            return
        if self._built != self.targets.generation:
            front = self.targets.front
            # The front keeps its host table live, so it is built once per attach.
            self._chain = front(self._aws) if front is not None else self._aws
            self._built = self.targets.generation
        await self._chain(scope, receive, send)

    async def _aws(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Requests no app host claimed: an AWS API by signature, target or path, else ours."""
        target = classify(scope) if scope["type"] == "http" else "server"
        if target == "s3" and self.targets.s3 is not None:
            await self.targets.s3(scope, receive, send)
        elif target == "lambda" and self.targets.lambda_api is not None:
            await self.targets.lambda_api(scope, receive, send)
        elif target == "aws-json":
            # CodePipeline's protocol is served on "/" whatever path the SDK was given.
            root = {**scope, "path": AWS_JSON_PATH, "raw_path": AWS_JSON_PATH.encode()}
            await self.app(root, receive, send)
        else:
            await self.app(scope, receive, send)
