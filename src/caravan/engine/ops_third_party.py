"""The third-party job plane (§1.14): PollForThirdPartyJobs, GetThirdPartyJobDetails,
AcknowledgeThirdPartyJob, PutThirdPartyJobSuccessResult, PutThirdPartyJobFailureResult.

They serve the jobs of ThirdParty action types declared with a JobWorker executor, over the
same job records as the job-worker API (``ops_jobs``). On AWS a partner proves its right to a
job with the clientToken of the clientId the job names; caravan issues a fresh clientId to each
job it hands out, and that clientId is the clientToken the job's other calls must carry.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from caravan.actions.base import ActionTypeKey
from caravan.actions.registry import ProviderKind
from caravan.engine import ops_jobs
from caravan.engine.core import EngineCore
from caravan.engine.fields import obj, text
from caravan.engine.ops_action_types import parse_type_id, register_declared_workers, type_name
from caravan.errors import (
    ActionTypeNotFoundError,
    ConflictError,
    InvalidInputError,
    JobNotFoundError,
)
from caravan.model.records import JobRecord
from caravan.model.statuses import JobStatus


class InvalidClientTokenError(ConflictError):
    reference = "invalid-client-token"
    aws_type = "InvalidClientTokenException"


class InvalidJobError(InvalidInputError):
    reference = "invalid-job"
    aws_type = "InvalidJobException"


async def poll_for_third_party_jobs(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = parse_type_id(obj(request, "actionTypeId"), "actionTypeId.")
    if type_id["owner"] != "ThirdParty":
        raise InvalidInputError(
            "PollForThirdPartyJobs serves ThirdParty action types; poll Custom ones with "
            "PollForJobs"
        )
    size = request.get("maxBatchSize", 1)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise InvalidInputError("maxBatchSize must be from 1 to 100")
    register_declared_workers(core)  # again: the registry forgets them when caravan restarts
    entry = core.registry.lookup(ActionTypeKey(**type_id))
    if entry is None:
        raise ActionTypeNotFoundError(
            f"there is no action type {type_name(type_id)}; declare it with UpdateActionType"
        )
    if entry.kind is not ProviderKind.JOB_WORKER:
        return {"jobs": []}  # caravan runs the jobs of its built-in providers itself
    return {"jobs": await _claim(core, type_id, size)}


async def _claim(core: EngineCore, type_id: dict[str, str], size: int) -> list[dict[str, str]]:
    with core.read() as tx:
        queued = tx.jobs.queued_for(**type_id, now=core.clock(), limit=size)
    claimed = []
    for candidate in queued:
        async with core.mutate(candidate.pipeline) as (tx, _ch):
            job = tx.jobs.get(candidate.id)
            if job is None or job.status != JobStatus.QUEUED:
                continue  # another poller took it
            client_id = str(uuid.uuid4())
            job.status = JobStatus.DISPATCHED
            job.nonce = secrets.token_hex(8)
            job.dispatches += 1
            job.updated = core.clock()
            job.data = {**job.data, "client_id": client_id}
            tx.jobs.save(job)
            claimed.append({"clientId": client_id, "jobId": job.id})
    return claimed


def _third_party_job(core: EngineCore, request: dict[str, Any]) -> JobRecord:
    job_id = text(request, "jobId")
    token = text(request, "clientToken")
    with core.read() as tx:
        job = tx.jobs.get(job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id!r} does not exist")
    if job.action_type.get("owner") != "ThirdParty":
        raise InvalidJobError(f"job {job_id} is not a third-party job; use the job API for it")
    if job.data.get("client_id") != token:
        raise InvalidClientTokenError(
            f"clientToken does not match job {job_id}: give the clientId PollForThirdPartyJobs "
            "returned with it"
        )
    return job


async def get_third_party_job_details(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job = _third_party_job(core, request)
    with core.read() as tx:
        data = ops_jobs.job_data(core, tx, job)
    # AWS does not give third parties the pipeline's ARN or execution id.
    data["pipelineContext"].pop("pipelineArn", None)
    data["pipelineContext"].pop("pipelineExecutionId", None)
    return {"jobDetails": {"id": job.id, "data": data, "nonce": job.nonce}}


async def acknowledge_third_party_job(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job = _third_party_job(core, request)
    return await ops_jobs.acknowledge_job(core, {"jobId": job.id, "nonce": request.get("nonce")})


async def put_third_party_job_success_result(
    core: EngineCore, request: dict[str, Any]
) -> dict[str, Any]:
    job = _third_party_job(core, request)
    keys = ("currentRevision", "continuationToken", "executionDetails")
    body = {"jobId": job.id, **{k: request[k] for k in keys if k in request}}
    return await ops_jobs.put_job_success_result(core, body)


async def put_third_party_job_failure_result(
    core: EngineCore, request: dict[str, Any]
) -> dict[str, Any]:
    job = _third_party_job(core, request)
    body = {"jobId": job.id, "failureDetails": request.get("failureDetails")}
    return await ops_jobs.put_job_failure_result(core, body)
