"""The Invoke action's handler mode: a real handler file run in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caravan.actions.base import (
    ActionTypeKey,
    Job,
    JobArtifact,
    JobContext,
    JobFailed,
    JobSucceeded,
)
from caravan.actions.lambda_invoke import handler_path, lambda_invoke_provider
from caravan.artifacts.memory import MemoryArtifactStore

HANDLERS = """
import json, os

def echo(event, context):
    job = event["CodePipeline.job"]
    params = json.loads(job["data"]["actionConfiguration"]["configuration"]["UserParameters"])
    print("deploying", params["target"], "remaining", context.get_remaining_time_in_millis() > 0)
    return {"summary": "deployed " + params["target"],
            "outputVariables": {"Target": params["target"], "JobId": job["id"],
                                "Secret": os.environ.get("CARAVAN_TEST_SECRET", "absent"),
                                "Cwd": os.getcwd()}}

def poll(event, context):
    token = event["CodePipeline.job"]["data"].get("continuationToken")
    if token is None:
        return {"continuationToken": "step-1", "summary": "started"}
    return {"summary": "finished after " + token}

def broken(event, context):
    raise ValueError("cannot deploy: bucket missing")

def refuse(event, context):
    return {"status": "Failed", "message": "health check failed"}

def shows_event(event, context):
    return {"outputVariables": {"keys": ",".join(sorted(event["CodePipeline.job"]["data"]))}}
"""


def make_job(function: str, **configuration: str) -> Job:
    return Job(
        id="job-1",
        nonce="n",
        action_type=ActionTypeKey("Invoke", "AWS", "Lambda", "1"),
        configuration={"FunctionName": function, **configuration},
        pipeline_name="p",
        stage_name="Deploy",
        action_name="Ship",
        action_execution_id="a-1",
        pipeline_execution_id="e-1",
        input_artifacts=(JobArtifact("Bin", "bucket", "p/Bin/abc"),),
    )


@pytest.fixture
def ctx(tmp_path: Path) -> JobContext:
    (tmp_path / "decl" / "actions").mkdir(parents=True)
    (tmp_path / "decl" / "actions" / "deploy.py").write_text(HANDLERS)
    work = tmp_path / "work"
    work.mkdir()
    logged: list[str] = []
    context = JobContext(
        artifacts=MemoryArtifactStore(),
        workdir=work,
        log=logged.append,
        declaration_dir=tmp_path / "decl",
    )
    context.settings = {}
    context.logged = logged  # type: ignore[attr-defined]
    return context


def test_handler_paths_are_recognised() -> None:
    assert handler_path("actions/deploy.py:handler") == ("actions/deploy.py", "handler")
    assert handler_path("my-function") is None
    assert handler_path("arn:aws:lambda:us-east-1:1:function:f") is None


async def test_a_handler_gets_the_job_event_and_reports_through_its_return_value(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARAVAN_TEST_SECRET", "do-not-leak")
    job = make_job("actions/deploy.py:echo", UserParameters=json.dumps({"target": "prod"}))
    result = await lambda_invoke_provider(job, ctx)
    assert isinstance(result, JobSucceeded)
    assert result.summary == "deployed prod"
    assert result.output_variables["Target"] == "prod"
    assert result.output_variables["JobId"] == "job-1"
    assert result.output_variables["Secret"] == "absent"  # scrubbed environment
    assert Path(result.output_variables["Cwd"]) == ctx.workdir
    assert any("deploying prod" in line for line in ctx.logged)  # type: ignore[attr-defined]


async def test_the_event_has_no_action_type_or_pipeline_context(ctx: JobContext) -> None:
    result = await lambda_invoke_provider(make_job("actions/deploy.py:shows_event"), ctx)
    assert isinstance(result, JobSucceeded)
    assert result.output_variables["keys"] == ("actionConfiguration,inputArtifacts,outputArtifacts")


async def test_a_continuation_token_comes_back_from_the_handler(ctx: JobContext) -> None:
    first = await lambda_invoke_provider(make_job("actions/deploy.py:poll"), ctx)
    assert isinstance(first, JobSucceeded) and first.continuation_token == "step-1"


async def test_an_exception_fails_the_job_with_its_type_and_message(ctx: JobContext) -> None:
    result = await lambda_invoke_provider(make_job("actions/deploy.py:broken"), ctx)
    assert isinstance(result, JobFailed)
    assert result.message.startswith("ValueError: cannot deploy: bucket missing")


async def test_a_handler_may_report_failure_explicitly(ctx: JobContext) -> None:
    result = await lambda_invoke_provider(make_job("actions/deploy.py:refuse"), ctx)
    assert isinstance(result, JobFailed) and result.message == "health check failed"


async def test_a_missing_handler_file_is_a_configuration_error(ctx: JobContext) -> None:
    result = await lambda_invoke_provider(make_job("actions/nope.py:handler"), ctx)
    assert isinstance(result, JobFailed)
    assert result.type == "ConfigurationError" and "nope.py" in result.message


async def test_an_unknown_function_name_says_how_to_give_a_handler(ctx: JobContext) -> None:
    result = await lambda_invoke_provider(make_job("my-function"), ctx)
    assert isinstance(result, JobFailed) and "handler path" in result.message


FUNCTION = b"""
import json

def handler(event, context):
    job = event["CodePipeline.job"]
    print("job", job["id"], "credentials given:", sorted(job["data"]["artifactCredentials"]))
    if json.loads(job["data"]["actionConfiguration"]["configuration"]["UserParameters"])["fail"]:
        raise RuntimeError("the deploy broke")
    return "reported through the API"
"""


class _Platform:
    def __init__(self, invoker: object) -> None:
        self.invoker = invoker


async def test_a_platform_function_gets_the_event_and_its_error_fails_the_job_at_once(
    ctx: JobContext, tmp_path: Path
) -> None:
    from caravan.actions.base import JobPending
    from caravan.artifacts.zipfiles import zip_files
    from caravan.platform.functions import FunctionRegistry, Invoker

    registry = FunctionRegistry(tmp_path / "functions")
    registry.create_function(
        "deployer", handler="app.handler", code=zip_files({"app.py": FUNCTION})
    )
    invoker = Invoker(registry)
    ctx.settings = {"platform": _Platform(invoker)}
    try:
        ok = await lambda_invoke_provider(
            make_job("deployer", UserParameters=json.dumps({"fail": False})), ctx
        )
        broken = await lambda_invoke_provider(
            make_job("deployer", UserParameters=json.dumps({"fail": True})), ctx
        )
    finally:
        await invoker.aclose()
    assert isinstance(ok, JobPending)  # it reports through PutJobSuccessResult, as on AWS
    assert isinstance(broken, JobFailed)
    assert "RuntimeError: the deploy broke" in broken.message
    log = "\n".join(ctx.logged)  # type: ignore[attr-defined]
    assert "credentials given: ['accessKeyId', 'secretAccessKey', 'sessionToken']" in log
    assert 'secretAccessKey":' not in log  # the event itself is never logged
