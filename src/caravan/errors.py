"""The one error tree of caravan.

Every error a user can see is a ``CaravanError``. Each carries a kebab-case ``reference`` (shared
by the CLI, the API's error payloads and the dashboard), the name of the matching AWS exception
shape (``aws_type``, used on the AWS-compatible wire), the process ``exit_code`` the CLI uses, and
an optional ``hint``.

    CaravanError                      exit 1: something ran and failed
    ├── InvalidInputError             exit 2: the user's input is wrong (ValidationException)
    │   ├── DeclarationError          a pipeline declaration breaks rules; lists every issue
    │   ├── ArchiveError              a zip is corrupt or hostile; names the entry
    │   └── VariableError             a #{namespace.name} reference cannot be resolved
    ├── NotFoundError                 exit 2: a named thing does not exist
    │   ├── PipelineNotFoundError, PipelineVersionNotFoundError, PipelineExecutionNotFoundError,
    │   │   StageNotFoundError, ActionNotFoundError, ActionTypeNotFoundError, JobNotFoundError
    ├── ConflictError                 exit 1: the request is valid but the state forbids it now
    │   ├── PipelineNameInUseError, StageNotRetryableError, NotLatestPipelineExecutionError,
    │   │   ConcurrentExecutionsLimitError, PipelineExecutionNotStoppableError,
    │   │   DuplicatedStopRequestError, InvalidApprovalTokenError,
    │   │   ApprovalAlreadyCompletedError, InvalidNonceError, InvalidJobStateError
    ├── CrossSiteRequestError         exit 1: an API call a browser sent from another site
    └── ServerUnavailableError        exit 1: the CLI cannot reach the server
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CaravanError(Exception):
    """Root of every error caravan reports to a user."""

    reference = "caravan-error"
    aws_type = "InternalFailure"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, object]:
        """The error payload of the native API (and the shape the CLI prints with --json)."""
        body: dict[str, object] = {
            "__type": self.aws_type,
            "message": self.message,
            "reference": self.reference,
        }
        if self.hint:
            body["hint"] = self.hint
        return body


class InvalidInputError(CaravanError):
    reference = "invalid-input"
    aws_type = "ValidationException"
    exit_code = 2
    http_status = 400


@dataclass(frozen=True)
class Issue:
    """One broken rule at one field path, e.g. ``stages[2].actions[0].runOrder``."""

    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}" if self.path else self.rule


class DeclarationError(InvalidInputError):
    """A pipeline declaration that breaks one or more rules; all of them are listed."""

    reference = "invalid-declaration"
    aws_type = "InvalidStructureException"

    def __init__(self, issues: Sequence[Issue], *, source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"pipeline declaration{where} has {count} {noun}:\n{lines}")

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["issues"] = [{"path": i.path, "rule": i.rule} for i in self.issues]
        return body


class ArchiveError(InvalidInputError):
    """A zip archive is corrupt or hostile (traversal, absolute path, escaping link, bomb)."""

    reference = "unsafe-archive"

    def __init__(self, message: str, *, entry: str | None = None) -> None:
        self.entry = entry
        super().__init__(f"{message} (entry {entry!r})" if entry is not None else message)


class VariableError(InvalidInputError):
    reference = "unresolved-variable"


class NotFoundError(CaravanError):
    reference = "not-found"
    aws_type = "ResourceNotFoundException"
    exit_code = 2
    http_status = 404


class PipelineNotFoundError(NotFoundError):
    reference = "pipeline-not-found"
    aws_type = "PipelineNotFoundException"


class PipelineVersionNotFoundError(NotFoundError):
    reference = "pipeline-version-not-found"
    aws_type = "PipelineVersionNotFoundException"


class PipelineExecutionNotFoundError(NotFoundError):
    reference = "execution-not-found"
    aws_type = "PipelineExecutionNotFoundException"


class StageNotFoundError(NotFoundError):
    reference = "stage-not-found"
    aws_type = "StageNotFoundException"


class ActionNotFoundError(NotFoundError):
    reference = "action-not-found"
    aws_type = "ActionNotFoundException"


class ActionTypeNotFoundError(NotFoundError):
    reference = "action-type-not-found"
    aws_type = "ActionTypeNotFoundException"


class JobNotFoundError(NotFoundError):
    reference = "job-not-found"
    aws_type = "JobNotFoundException"


class ConflictError(CaravanError):
    reference = "conflict"
    aws_type = "ConflictException"
    exit_code = 1
    http_status = 409


class PipelineNameInUseError(ConflictError):
    reference = "pipeline-name-in-use"
    aws_type = "PipelineNameInUseException"


class StageNotRetryableError(ConflictError):
    reference = "stage-not-retryable"
    aws_type = "StageNotRetryableException"


class NotLatestPipelineExecutionError(ConflictError):
    reference = "not-latest-execution"
    aws_type = "NotLatestPipelineExecutionException"


class ConcurrentExecutionsLimitError(ConflictError):
    reference = "concurrent-executions-limit"
    aws_type = "ConcurrentPipelineExecutionsLimitExceededException"


class PipelineExecutionNotStoppableError(ConflictError):
    reference = "execution-not-stoppable"
    aws_type = "PipelineExecutionNotStoppableException"


class DuplicatedStopRequestError(ConflictError):
    reference = "duplicated-stop-request"
    aws_type = "DuplicatedStopRequestException"


class InvalidApprovalTokenError(ConflictError):
    reference = "invalid-approval-token"
    aws_type = "InvalidApprovalTokenException"


class ApprovalAlreadyCompletedError(ConflictError):
    reference = "approval-already-completed"
    aws_type = "ApprovalAlreadyCompletedException"


class InvalidNonceError(ConflictError):
    reference = "invalid-nonce"
    aws_type = "InvalidNonceException"


class InvalidJobStateError(ConflictError):
    reference = "invalid-job-state"
    aws_type = "InvalidJobStateException"


class CrossSiteRequestError(CaravanError):
    """A request a browser could have sent from another site without the user's intent."""

    reference = "cross-site-request"
    aws_type = "AccessDeniedException"
    http_status = 403


class ServerUnavailableError(CaravanError):
    reference = "server-unavailable"
    aws_type = "ServiceUnavailableException"
    http_status = 503


class ObjectNotFoundError(NotFoundError):
    reference = "object-not-found"
    aws_type = "NoSuchKey"
