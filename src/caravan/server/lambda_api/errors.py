"""Lambda's error responses, and the errors only the HTTP layer of the Lambda API can raise.

Lambda answers an error with the exception's own HTTP status, the header
``x-amzn-ErrorType: <ExceptionName>`` and a body ``{"Type": "User" | "Service", "message": ...}``
(``"Message"`` for the two shapes botocore's model spells that way). botocore's rest-json parser
takes the error code from the header and the text from ``message``/``Message``, so boto3 raises
``client.exceptions.<ExceptionName>``.

A caravan error whose ``aws_type`` is not one of Lambda's is answered as the Lambda exception of
its kind: bad input -> InvalidParameterValueException, not found -> ResourceNotFoundException,
conflict -> ResourceConflictException, anything else -> ServiceException.

    InvalidInputError
    ├── RequestEntityTooLargeException   a CreateFunction/UpdateFunctionCode body over the limit
    ├── UnknownOperationException        no Lambda operation at this path (404)
    └── MethodNotAllowedException        the path exists, the method does not (405)
"""

from __future__ import annotations

import json

from starlette.responses import Response

from caravan.errors import CaravanError, ConflictError, InvalidInputError, NotFoundError
from caravan.platform.functions import TooManyRequestsException

# The HTTP status Lambda answers each exception it can send here with (botocore's model).
LAMBDA_STATUS: dict[str, int] = {
    "InvalidParameterValueException": 400,
    "InvalidRequestContentException": 400,
    "ResourceNotFoundException": 404,
    "UnknownOperationException": 404,
    "MethodNotAllowedException": 405,
    "ResourceConflictException": 409,
    "PreconditionFailedException": 412,
    "RequestTooLargeException": 413,
    "RequestEntityTooLargeException": 413,
    "UnsupportedMediaTypeException": 415,
    "TooManyRequestsException": 429,
    "ServiceException": 500,
}
# botocore's model names the text member "Message" on these shapes, "message" on the others.
_CAPITALISED = frozenset({"ResourceNotFoundException", "ServiceException"})


class RequestEntityTooLargeException(InvalidInputError):
    reference = "function-request-entity-too-large"
    aws_type = "RequestEntityTooLargeException"
    http_status = 413


class UnknownOperationException(InvalidInputError):
    reference = "function-unknown-operation"
    aws_type = "UnknownOperationException"
    http_status = 404


class MethodNotAllowedException(InvalidInputError):
    reference = "function-method-not-allowed"
    aws_type = "MethodNotAllowedException"
    http_status = 405


def lambda_type(error: CaravanError) -> tuple[str, int]:
    """(Lambda exception name, HTTP status) for ``error``."""
    if error.aws_type in LAMBDA_STATUS:
        return error.aws_type, LAMBDA_STATUS[error.aws_type]
    if isinstance(error, InvalidInputError):
        return "InvalidParameterValueException", 400
    if isinstance(error, NotFoundError):
        return "ResourceNotFoundException", 404
    if isinstance(error, ConflictError):
        return "ResourceConflictException", 409
    return "ServiceException", 500


def error_response(error: CaravanError, request_id: str) -> Response:
    """The response Lambda sends for ``error``."""
    name, status = lambda_type(error)
    body: dict[str, object] = {
        "Type": "User" if status < 500 else "Service",
        "Message" if name in _CAPITALISED else "message": error.message,
    }
    headers = {"x-amzn-ErrorType": name, "x-amzn-RequestId": request_id}
    if isinstance(error, TooManyRequestsException):
        body["Reason"] = error.reason
        headers["Retry-After"] = "1"
    return Response(
        json.dumps(body).encode("utf-8"),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
