"""The AWS JSON 1.1 endpoint: CodePipeline's own wire protocol on ``POST /``.

boto3, the AWS CLI and the SDKs call ``POST /`` with ``X-Amz-Target:
CodePipeline_20150709.<Operation>`` and a JSON body; answers are the operation's output shape,
errors are ``{"__type": "<ExceptionShape>", "message": "..."}`` with HTTP 400 and the
``x-amzn-ErrorType`` header, exactly as AWS sends them. Requests may be SigV4-signed; the
signature is not checked (any credentials are accepted: the server listens on loopback).
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from caravan.errors import CaravanError, InvalidInputError
from caravan.server.native import (
    UnknownOperationError,
    dump_json,
    internal_error,
    run_operation,
)

TARGET_PREFIX = "CodePipeline_20150709."
CONTENT_TYPE = "application/x-amz-json-1.1"


def operation_of(target: str | None) -> str:
    """The operation named by an ``X-Amz-Target`` header."""
    if not target:
        raise InvalidInputError(
            "missing X-Amz-Target header",
            hint=f"send X-Amz-Target: {TARGET_PREFIX}<Operation>",
        )
    service, _, operation = target.partition(".")
    if f"{service}." != TARGET_PREFIX or not operation:
        raise UnknownOperationError(f"unknown target {target!r}; this endpoint serves CodePipeline")
    return operation


def _response(
    body: object, status: int, request_id: str, error_type: str | None = None
) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error_type is not None:
        headers["x-amzn-ErrorType"] = error_type
    return Response(dump_json(body), status_code=status, media_type=CONTENT_TYPE, headers=headers)


def aws_error(error: CaravanError, request_id: str) -> Response:
    # AWS answers every client error with 400; the exception shape in __type tells them apart.
    status = 400 if error.http_status < 500 else error.http_status
    body = {"__type": error.aws_type, "message": error.message}
    return _response(body, status, request_id, error.aws_type)


async def aws_json(request: Request) -> Response:
    request_id = str(uuid.uuid4())
    try:
        operation = operation_of(request.headers.get("x-amz-target"))
        result = await run_operation(request, operation)
    except CaravanError as error:
        return aws_error(error, request_id)
    except Exception:
        return aws_error(internal_error("AWS JSON request"), request_id)
    return _response(result, 200, request_id)


routes = [Route("/", aws_json, methods=["POST"])]
