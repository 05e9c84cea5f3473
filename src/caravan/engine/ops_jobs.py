"""The job-worker API (§1.14): PollForJobs, AcknowledgeJob, GetJobDetails,
PutJobSuccessResult, PutJobFailureResult.

Jobs of Custom action types without a built-in provider wait here for an external worker; any
job (a Lambda action's included) may report its result through these operations.
"""

from __future__ import annotations

import secrets
from typing import Any

from caravan.actions.base import ActionTypeKey, JobFailed, JobSucceeded, job_credentials
from caravan.engine.core import EngineCore
from caravan.engine.dispatch import build_job
from caravan.errors import (
    InvalidInputError,
    InvalidJobStateError,
    InvalidNonceError,
    JobNotFoundError,
)
from caravan.model.records import JobRecord
from caravan.model.statuses import FailureType, JobStatus
from caravan.store import Tx

MAX_OUTPUT_VARIABLES_BYTES = 122_880


class OutputVariablesSizeExceededError(InvalidInputError):
    reference = "output-variables-too-large"
    aws_type = "OutputVariablesSizeExceededException"


def job_data(core: EngineCore, tx: Tx, job: JobRecord) -> dict[str, Any]:
    action = tx.executions.get_action(job.action_execution_id)
    if action is None:
        raise JobNotFoundError(f"job {job.id} has no action execution any more")
    context = core.job_context(tx, action)
    return build_job(job, action, context).job_data(job_credentials(job.id))


async def poll_for_jobs(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = request.get("actionTypeId") or {}
    try:
        key = ActionTypeKey(
            **{k: str(type_id[k]) for k in ("category", "owner", "provider", "version")}
        )
    except KeyError as missing:
        raise InvalidInputError(f"actionTypeId.{missing.args[0]} is required") from None
    size = int(request.get("maxBatchSize", 1))
    if not 1 <= size <= 100:
        raise InvalidInputError("maxBatchSize must be from 1 to 100")
    jobs: list[dict[str, Any]] = []
    with core.read() as tx:
        queued = tx.jobs.queued_for(
            key.category, key.owner, key.provider, key.version, now=core.clock(), limit=size
        )
    for candidate in queued:
        async with core.mutate(candidate.pipeline) as (tx, _ch):
            job = tx.jobs.get(candidate.id)
            if job is None or job.status != JobStatus.QUEUED:
                continue  # another poller took it
            job.status = JobStatus.DISPATCHED
            job.nonce = secrets.token_hex(8)
            job.dispatches += 1
            job.updated = core.clock()
            tx.jobs.save(job)
            jobs.append(
                {
                    "id": job.id,
                    "data": job_data(core, tx, job),
                    "nonce": job.nonce,
                    "accountId": core.settings.account_id,
                }
            )
    return {"jobs": jobs}


async def acknowledge_job(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job_id, nonce = request.get("jobId"), request.get("nonce")
    with core.read() as tx:
        found = tx.jobs.get(str(job_id))
    if found is None:
        raise JobNotFoundError(f"job {job_id!r} does not exist")
    async with core.mutate(found.pipeline) as (tx, _ch):
        job = tx.jobs.get(found.id)
        assert job is not None  # jobs are only deleted with their pipeline
        if job.nonce != nonce:
            raise InvalidNonceError(
                f"the nonce does not match job {job_id} (another worker "
                "acknowledged it, or it was polled again)"
            )
        if job.status in (JobStatus.QUEUED, JobStatus.DISPATCHED):
            job.status = JobStatus.IN_PROGRESS
            job.updated = core.clock()
            tx.jobs.save(job)
        return {"status": job.status}


async def get_job_details(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job_id = str(request.get("jobId"))
    with core.read() as tx:
        job = tx.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id!r} does not exist")
        data = job_data(core, tx, job)
    return {"jobDetails": {"id": job.id, "data": data, "accountId": core.settings.account_id}}


async def put_job_success_result(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job = _open_job(core, request)
    details = request.get("executionDetails") or {}
    token = request.get("continuationToken")
    variables = {str(k): str(v) for k, v in (request.get("outputVariables") or {}).items()}
    if token is not None and variables:
        raise InvalidInputError(
            "outputVariables can only be sent without a continuationToken (the final result)"
        )
    if sum(len(k) + len(v) for k, v in variables.items()) > MAX_OUTPUT_VARIABLES_BYTES:
        raise OutputVariablesSizeExceededError(
            f"output variables exceed {MAX_OUTPUT_VARIABLES_BYTES} bytes"
        )
    revision = request.get("currentRevision")
    result = JobSucceeded(
        output_variables=variables,
        summary=details.get("summary"),
        external_execution_id=details.get("externalExecutionId"),
        percent_complete=details.get("percentComplete"),
        continuation_token=token,
        current_revision=revision,
    )
    await core.job_result(job.id, result)
    return {}


async def put_job_failure_result(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job = _open_job(core, request)
    details = request.get("failureDetails") or {}
    try:
        kind = FailureType(details.get("type", "JobFailed"))
    except ValueError:
        raise InvalidInputError(
            f"failureDetails.type must be one of {', '.join(t.value for t in FailureType)}"
        ) from None
    message = details.get("message")
    if not isinstance(message, str) or not 1 <= len(message) <= 5000:
        raise InvalidInputError("failureDetails.message is required, 1 to 5000 characters")
    await core.job_result(job.id, JobFailed(message, kind, details.get("externalExecutionId")))
    return {}


def _open_job(core: EngineCore, request: dict[str, Any]) -> JobRecord:
    job_id = str(request.get("jobId"))
    with core.read() as tx:
        job: JobRecord | None = tx.jobs.get(job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id!r} does not exist")
    if not job.open:
        raise InvalidJobStateError(f"job {job_id} has already ended ({job.status})")
    return job
