"""The errors of the functions platform, named and shaped like the Lambda API's.

Each class subclasses the caravan error kind it belongs to, so the CLI, the native API and the
dashboard treat it like any other caravan error, while the AWS-compatible API answers with the
Lambda exception name (``aws_type``) and HTTP status a boto3 client expects.

    NotFoundError
    └── ResourceNotFoundException        a function, version or alias does not exist (404)
    InvalidInputError
    ├── InvalidParameterValueException   a parameter breaks a Lambda rule (400)
    ├── InvalidRequestContentException   the Invoke payload is not JSON (400)
    └── RequestTooLargeException         the Invoke payload is over Lambda's limit (413)
    ConflictError
    ├── ResourceConflictException        the thing exists already / is in use (409)
    ├── PreconditionFailedException      a RevisionId guard did not match (412)
    └── TooManyRequestsException         the function's concurrency limit is reached (429)
    CaravanError
    └── ServiceException                 the platform itself failed (a worker could not start)
"""

from __future__ import annotations

from caravan.errors import CaravanError, ConflictError, InvalidInputError, NotFoundError


class ResourceNotFoundException(NotFoundError):
    reference = "function-resource-not-found"
    aws_type = "ResourceNotFoundException"


class InvalidParameterValueException(InvalidInputError):
    reference = "function-invalid-parameter"
    aws_type = "InvalidParameterValueException"


class InvalidRequestContentException(InvalidInputError):
    reference = "function-invalid-request-content"
    aws_type = "InvalidRequestContentException"


class RequestTooLargeException(InvalidInputError):
    reference = "function-request-too-large"
    aws_type = "RequestTooLargeException"
    http_status = 413


class ResourceConflictException(ConflictError):
    reference = "function-resource-conflict"
    aws_type = "ResourceConflictException"


class PreconditionFailedException(ConflictError):
    reference = "function-precondition-failed"
    aws_type = "PreconditionFailedException"
    http_status = 412


class TooManyRequestsException(ConflictError):
    """Lambda's throttle: every concurrency slot of the function is busy."""

    reference = "function-throttled"
    aws_type = "TooManyRequestsException"
    http_status = 429

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["Reason"] = self.reason
        return body


class ServiceException(CaravanError):
    reference = "function-service-error"
    aws_type = "ServiceException"
