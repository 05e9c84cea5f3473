"""The Invoke operation on the wire: ``POST /2015-03-31/functions/{FunctionName}/invocations``.

Request: the raw payload as the body (at most 6 MB, else 413 RequestTooLargeException), the
``Qualifier`` query parameter, and the headers ``X-Amz-Invocation-Type`` (RequestResponse, Event,
DryRun), ``X-Amz-Log-Type`` (None, Tail) and ``X-Amz-Client-Context`` (base64 JSON).

Response: 200 with the function's result as the raw body for RequestResponse, 202 for Event,
204 for DryRun. A function error is not an API error: the status stays 200 and
``X-Amz-Function-Error: Unhandled`` says so. ``X-Amz-Executed-Version`` names the version that ran
(it is known only when the call ran synchronously), ``X-Amz-Log-Result`` carries the base64 tail
of the log when asked for with ``Tail``.
"""

from __future__ import annotations

from starlette.responses import Response

from caravan.errors import CaravanError
from caravan.platform.functions import RequestTooLargeException
from caravan.server.lambda_api.requests import JSON, Call

MAX_INVOKE_BODY = 6 * 1024 * 1024  # Lambda's synchronous request payload limit


def _too_large(limit: int) -> CaravanError:
    return RequestTooLargeException(
        f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
    )


async def invoke(call: Call) -> Response:
    qualifier = call.qualifier()
    payload = await call.body(MAX_INVOKE_BODY, _too_large)
    headers = call.headers
    result = await call.invoker.invoke(
        call.params["FunctionName"],
        payload,
        qualifier=qualifier,
        invocation_type=headers.get("x-amz-invocation-type") or "RequestResponse",
        log_type=headers.get("x-amz-log-type"),
        client_context=headers.get("x-amz-client-context"),
    )
    answer: dict[str, str] = {"x-amzn-RequestId": result.request_id}
    if result.status_code != 200:
        return Response(status_code=result.status_code, headers=answer)
    answer["X-Amz-Executed-Version"] = result.executed_version
    if result.function_error is not None:
        answer["X-Amz-Function-Error"] = result.function_error
    if result.log_result is not None:
        answer["X-Amz-Log-Result"] = result.log_result
    return Response(result.payload, status_code=200, headers=answer, media_type=JSON)
