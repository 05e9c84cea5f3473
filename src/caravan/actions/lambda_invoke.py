"""The Invoke action, {Invoke, AWS, Lambda, "1"}: calls a function with the CodePipeline.job
event (§1.14).

``FunctionName`` names a function of the platform, or — always available — a handler in a file
beside the declaration, written ``path/to/file.py:handler``.

A platform function is invoked with the event and reports as on AWS, through the job API
(PutJobSuccessResult with or without a continuation token, PutJobFailureResult) that its boto3
reaches through the server. Unlike AWS, a function error fails the job at once instead of
leaving it to time out (and the function is not retried, so a deploy never runs twice).

A handler file runs in its own process with a scrubbed environment and its own working
directory, and reports through the job API when an endpoint is configured, or, as caravan's
shortcut, by what it returns:

- raising fails the job with the error's type and message;
- returning a dict with ``continuationToken``, ``outputVariables``, ``summary`` or
  ``externalExecutionId`` succeeds with those (``{"status": "Failed", "message": ...}`` fails);
- returning anything else succeeds, unless an endpoint is configured, in which case the handler
  is expected to have reported through the API.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from caravan.actions.base import (
    Job,
    JobContext,
    JobFailed,
    JobPending,
    JobResult,
    JobSucceeded,
    job_credentials,
)
from caravan.actions.process import run_process, scrubbed_environment
from caravan.errors import CaravanError
from caravan.model.statuses import FailureType

HANDLER_TIMEOUT = 900.0  # Lambda's maximum; the action's own timeout still applies above it


def handler_path(function_name: str) -> tuple[str, str] | None:
    """``("dir/file.py", "handler")`` when FunctionName is a handler path, else None."""
    file, sep, function = function_name.rpartition(":")
    if sep and file.endswith(".py") and function.isidentifier():
        return file, function
    return None


async def lambda_invoke_provider(job: Job, ctx: JobContext) -> JobResult:
    name = job.configuration.get("FunctionName", "")
    target = handler_path(name)
    if target is None:
        platform = ctx.settings.get("platform")
        if platform is None:
            return JobFailed(
                f"function {name!r} is not known here (no platform is running); give "
                "FunctionName as a handler path such as actions/deploy.py:handler (relative to "
                "the declaration), or run the pipeline in `caravan server`",
                FailureType.CONFIGURATION_ERROR,
            )
        return await _invoke_function(job, ctx, platform.invoker, name)
    base = ctx.declaration_dir or Path.cwd()
    file = (base / target[0]).resolve()
    if not file.is_file():
        return JobFailed(
            f"handler file {file} does not exist (FunctionName {name!r})",
            FailureType.CONFIGURATION_ERROR,
        )
    return await _run_handler(job, ctx, file, target[1])


async def _run_handler(job: Job, ctx: JobContext, file: Path, function: str) -> JobResult:
    result_file = ctx.workdir / ".caravan-result.json"
    endpoint = ctx.settings.get("aws_endpoint_url")
    extra = {
        "AWS_REGION": job.region,
        "AWS_DEFAULT_REGION": job.region,
        "CARAVAN_HANDLER_TIMEOUT": str(HANDLER_TIMEOUT),
        "PYTHONUNBUFFERED": "1",
    }
    if endpoint:
        extra["AWS_ENDPOINT_URL"] = str(endpoint)
    env = scrubbed_environment(extra, home=ctx.workdir / ".home")
    # The event carries credentials: it goes to the handler on stdin, never to a log.
    event = json.dumps(job.lambda_event()).encode()
    ctx.log(f"invoking {file.name}:{function} (job {job.id})")
    outcome = await run_process(
        [
            sys.executable,
            "-I",
            "-m",
            "caravan.actions.lambda_runner",
            str(file),
            function,
            str(result_file),
        ],
        cwd=ctx.workdir,
        env=env,
        on_output=ctx.log,
        timeout=HANDLER_TIMEOUT,
        stdin=event,
    )
    if outcome.timed_out:
        return JobFailed(f"handler timed out after {HANDLER_TIMEOUT:g} seconds")
    if not result_file.exists():
        return JobFailed(
            f"handler process ended with exit code {outcome.exit_code} before reporting:\n"
            + outcome.output_tail[-2000:]
        )
    return interpret(json.loads(result_file.read_text()), reported_by_api=bool(endpoint))


async def _invoke_function(job: Job, ctx: JobContext, invoker: Any, name: str) -> JobResult:
    payload = json.dumps(job.lambda_event(job_credentials(job.id))).encode()
    ctx.log(f"invoking function {name} (job {job.id})")
    try:
        result = await invoker.invoke(name, payload, log_type="Tail")
    except CaravanError as error:
        return JobFailed(
            f"cannot invoke function {name}: {error.message}", FailureType.CONFIGURATION_ERROR
        )
    if result.log_result:
        ctx.log(base64.b64decode(result.log_result).decode("utf-8", "replace").rstrip())
    if result.function_error:
        try:
            body = json.loads(result.payload)
            detail = f"{body.get('errorType')}: {body.get('errorMessage')}"
        except (ValueError, AttributeError):
            detail = result.payload.decode("utf-8", "replace")[:2000]
        return JobFailed(
            f"function {name} (version {result.executed_version}) failed: {detail}",
            external_execution_id=result.request_id,
        )
    return JobPending()  # the function reports through PutJobSuccessResult/FailureResult


def interpret(outcome: dict[str, Any], *, reported_by_api: bool) -> JobResult:
    if outcome.get("kind") == "raised":
        trace = "".join(outcome.get("stackTrace") or [])
        return JobFailed(f"{outcome.get('errorType')}: {outcome.get('errorMessage')}\n{trace}")
    value = outcome.get("value")
    if isinstance(value, dict):
        if value.get("status") == "Failed":
            return JobFailed(str(value.get("message", "the handler reported a failure")))
        keys = {"continuationToken", "outputVariables", "summary", "externalExecutionId"}
        if keys & set(value):
            return JobSucceeded(
                output_variables={
                    str(k): str(v) for k, v in (value.get("outputVariables") or {}).items()
                },
                summary=value.get("summary"),
                external_execution_id=value.get("externalExecutionId"),
                continuation_token=value.get("continuationToken"),
            )
    return JobPending() if reported_by_api else JobSucceeded()
