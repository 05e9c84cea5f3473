"""The native JSON API: ``POST /api/{Operation}``, ``GET /api/logs/{id}`` and ``GET /healthz``.

Requests and responses are CodePipeline's shapes (see ``caravan.engine.api``); errors are a
``CaravanError.to_dict()`` with the error's HTTP status. The helpers that read a bounded JSON
body and run one operation are shared with the AWS JSON 1.1 endpoint (``awsjson.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from caravan import __version__
from caravan.engine.api import OPERATIONS, EngineAPI
from caravan.errors import CaravanError, CrossSiteRequestError, InvalidInputError

logger = logging.getLogger("caravan.server")

MAX_BODY_BYTES = 10 * 1024 * 1024


class UnknownOperationError(InvalidInputError):
    reference = "unknown-operation"
    aws_type = "UnknownOperationException"


class RequestTooLargeError(InvalidInputError):
    reference = "request-too-large"
    aws_type = "RequestEntityTooLargeException"
    http_status = 413


def engine_of(request: Request) -> EngineAPI:
    engine: EngineAPI = request.app.state.engine
    return engine


def _encode(value: object) -> object:
    # The engine promises epoch floats; a stray datetime still goes out as AWS would send it.
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_json(data: object) -> bytes:
    return json.dumps(data, default=_encode, ensure_ascii=False).encode("utf-8")


def json_response(
    data: object, status: int = 200, *, media_type: str = "application/json"
) -> Response:
    return Response(dump_json(data), status_code=status, media_type=media_type)


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 once it passes the app's limit (before reading it
    whole when Content-Length already says so)."""
    limit: int = request.app.state.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"request body of {declared} bytes exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_request(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object; an empty body is the empty request."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"request body is not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"request body must be a JSON object, got {type(data).__name__}")
    return data


def check_operation(operation: str) -> str:
    if operation not in OPERATIONS:
        raise UnknownOperationError(
            f"unknown operation {operation!r}",
            hint="operations are CodePipeline's, e.g. GetPipelineState, StartPipelineExecution",
        )
    return operation


# Content types a browser may POST to another site without asking first (no CORS preflight).
_CROSS_SITE_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}


def refuse_cross_site(request: Request) -> None:
    """The API changes state, so a page on another site must not be able to call it: refuse
    what a browser sends cross-site without a preflight (a form-like content type, or a
    Sec-Fetch-Site that is not same-origin). boto3, the AWS CLI and caravan's CLI send JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    site = request.headers.get("sec-fetch-site")
    if media_type in _CROSS_SITE_TYPES or site in ("cross-site", "same-site"):
        raise CrossSiteRequestError(
            "refused: the API takes JSON (Content-Type application/json or "
            "application/x-amz-json-1.1) and no cross-site requests"
        )


async def run_operation(request: Request, operation: str) -> dict[str, Any]:
    """Read the body of ``request`` and run ``operation`` on the engine."""
    refuse_cross_site(request)
    check_operation(operation)
    payload = parse_request(await read_body(request))
    return await engine_of(request).call(operation, payload)


def internal_error(context: str) -> CaravanError:
    """Log the exception being handled with its traceback; return what the client may see."""
    logger.exception("unexpected error in %s", context)
    error = CaravanError("internal error in the caravan server (the server log has the details)")
    error.reference = "internal-error"
    return error


def error_response(error: CaravanError) -> Response:
    return json_response(error.to_dict(), error.http_status)


async def call_operation(request: Request) -> Response:
    operation = request.path_params["operation"]
    try:
        return json_response(await run_operation(request, operation))
    except CaravanError as error:
        return error_response(error)
    except Exception:
        return error_response(internal_error(f"operation {operation}"))


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "0")
    if not raw.isdigit():
        raise InvalidInputError(f"offset must be a non-negative integer, got {raw!r}")
    return int(raw)


async def read_log(request: Request) -> Response:
    action_execution_id = request.path_params["action_execution_id"]
    try:
        offset = _offset(request)
        if request.query_params.get("follow") in ("1", "true"):
            return await _follow_log(request, action_execution_id, offset)
        chunk = await engine_of(request).read_log(action_execution_id, offset)
    except CaravanError as error:
        return error_response(error)
    except Exception:
        return error_response(internal_error(f"log of {action_execution_id}"))
    headers = {
        "X-Caravan-Next-Offset": str(chunk.next_offset),
        "X-Caravan-Log-Complete": "true" if chunk.complete else "false",
    }
    return Response(chunk.text, media_type="text/plain; charset=utf-8", headers=headers)


async def _follow_log(request: Request, action_execution_id: str, offset: int) -> Response:
    stream = aiter(engine_of(request).follow_log(action_execution_id, offset))
    # Pull the first chunk before answering so an unknown id is a 404, not a broken stream.
    try:
        first: str | None = await anext(stream)
    except StopAsyncIteration:
        first = None

    async def body() -> AsyncIterator[str]:
        try:
            if first is not None:
                yield first
            async for text in stream:
                yield text
        except CaravanError as error:
            logger.warning("log stream of %s ended early: %s", action_execution_id, error)
        except Exception:
            internal_error(f"log stream of {action_execution_id}")
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


async def health(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


routes = [
    Route("/healthz", health, methods=["GET"]),
    Route("/api/logs/{action_execution_id}", read_log, methods=["GET"]),
    Route("/api/{operation}", call_operation, methods=["POST"]),
]
