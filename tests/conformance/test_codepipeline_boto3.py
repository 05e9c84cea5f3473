"""boto3 drives every CodePipeline operation caravan supports against a real ``caravan server``:
request and response shapes, paginators and the AWS exception classes, as an AWS user sees them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from codepipeline_server import GitRepo

TERMINAL = {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"}
ROLE = "arn:aws:iam::123456789012:role/caravan-conformance"
COMMANDS = {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}
MANUAL = {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}


# Declarations ---------------------------------------------------------------------------------
def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def source(repo: GitRepo) -> dict[str, Any]:
    return {
        "name": "Checkout",
        "actionTypeId": {
            "category": "Source",
            "owner": "Custom",
            "provider": "Git",
            "version": "1",
        },
        "outputArtifacts": [{"name": "Src"}],
        "configuration": {"Repository": str(repo.path), "Branch": "main"},
    }


def commands(
    name: str,
    lines: list[str],
    *,
    inputs: tuple[str, ...] = ("Src",),
    outputs: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": name,
        "actionTypeId": COMMANDS,
        "inputArtifacts": [{"name": i} for i in inputs],
        "outputArtifacts": [{"name": o, "files": ["**/*"]} for o in outputs],
        "commands": lines,
    }
    if env:
        action["environmentVariables"] = [{"name": k, "value": v} for k, v in env.items()]
    return action


def declaration(
    name: str, repo: GitRepo, *stages: tuple[str, list[dict[str, Any]]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": ROLE,
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [source(repo)]},
            *({"name": s, "actions": a} for s, a in stages),
        ],
        **extra,
    }


# Waiting --------------------------------------------------------------------------------------
def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def execution(client: Any, pipeline: str, execution_id: str) -> dict[str, Any]:
    return client.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]


def finished(client: Any, pipeline: str, execution_id: str) -> dict[str, Any]:
    """The execution once it has ended."""
    return wait_for(
        lambda: (e := execution(client, pipeline, execution_id))["status"] in TERMINAL and e,
        f"execution {execution_id} of {pipeline} to end",
    )


def latest_id(client: Any, pipeline: str) -> str:
    summaries = client.list_pipeline_executions(pipelineName=pipeline)["pipelineExecutionSummaries"]
    return str(summaries[0]["pipelineExecutionId"])


def stage_state(client: Any, pipeline: str, stage: str) -> dict[str, Any]:
    states = client.get_pipeline_state(name=pipeline)["stageStates"]
    return next(s for s in states if s["stageName"] == stage)


def create(client: Any, decl: dict[str, Any], **extra: Any) -> str:
    """Create the pipeline and return the id of the execution its creation started."""
    client.create_pipeline(pipeline=decl, **extra)
    return latest_id(client, decl["name"])


def collect(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    pages = client.get_paginator(operation).paginate(**kwargs)
    return [item for page in pages for item in page[key]]


# Pipelines ------------------------------------------------------------------------------------
def test_every_operation_of_the_service_model_is_served() -> None:
    import botocore.session

    from caravan.engine.api import OPERATIONS

    model = botocore.session.get_session().get_service_model("codepipeline")
    assert set(model.operation_names) == set(OPERATIONS)


def test_pipelines_are_created_read_updated_listed_and_deleted(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    name = unique("crud")
    decl = declaration(name, git_repo, ("Build", [commands("Make", ["cat README"])]))
    created = codepipeline.create_pipeline(
        pipeline=decl, tags=[{"key": "team", "value": "caravan"}]
    )
    assert created["pipeline"]["version"] == 1
    assert created["tags"] == [{"key": "team", "value": "caravan"}]
    got = codepipeline.get_pipeline(name=name)
    assert got["pipeline"]["stages"][1]["actions"][0]["commands"] == ["cat README"]
    assert got["metadata"]["pipelineArn"].endswith(f":{name}")
    assert isinstance(got["metadata"]["created"], datetime)

    decl["stages"].append({"name": "Check", "actions": [commands("Test", ["true"])]})
    assert codepipeline.update_pipeline(pipeline=decl)["pipeline"]["version"] == 2
    assert len(codepipeline.get_pipeline(name=name)["pipeline"]["stages"]) == 3
    first = codepipeline.get_pipeline(name=name, version=1)["pipeline"]
    assert (first["version"], len(first["stages"])) == (1, 2)

    others = [unique("crud-list") for _ in range(2)]
    for other in others:
        codepipeline.create_pipeline(
            pipeline=declaration(other, git_repo, ("B", [commands("X", ["true"])]))
        )
    listed = collect(codepipeline, "list_pipelines", "pipelines", PaginationConfig={"PageSize": 1})
    names = [p["name"] for p in listed]
    assert {name, *others} <= set(names) and len(names) == len(set(names))
    summary = next(p for p in listed if p["name"] == name)
    assert (summary["version"], summary["pipelineType"]) == (2, "V2")

    codepipeline.delete_pipeline(name=name)
    with pytest.raises(codepipeline.exceptions.PipelineNotFoundException):
        codepipeline.get_pipeline(name=name)


def test_bad_requests_raise_the_aws_exception_classes(codepipeline: Any, git_repo: GitRepo) -> None:
    errors = codepipeline.exceptions
    name = unique("errors")
    create(codepipeline, declaration(name, git_repo, ("Build", [commands("Make", ["true"])])))
    with pytest.raises(errors.PipelineNameInUseException):
        codepipeline.create_pipeline(
            pipeline=declaration(name, git_repo, ("B", [commands("X", ["true"])]))
        )
    broken = declaration(unique("broken"), git_repo)  # a Source stage only
    with pytest.raises(errors.InvalidStructureException) as caught:
        codepipeline.create_pipeline(pipeline=broken)
    assert "not a Source action" in str(caught.value)
    with pytest.raises(errors.PipelineVersionNotFoundException):
        codepipeline.get_pipeline(name=name, version=9)
    with pytest.raises(errors.PipelineExecutionNotFoundException):
        codepipeline.get_pipeline_execution(
            pipelineName=name, pipelineExecutionId=str(uuid.uuid4())
        )
    with pytest.raises(errors.InvalidNextTokenException):
        codepipeline.list_pipelines(nextToken="not-a-token")
    with pytest.raises(errors.StageNotFoundException):
        codepipeline.disable_stage_transition(
            pipelineName=name, stageName="Nope", transitionType="Inbound", reason="x"
        )
    with pytest.raises(errors.JobNotFoundException):
        codepipeline.acknowledge_job(jobId=str(uuid.uuid4()), nonce="1")
    with pytest.raises(errors.ValidationException):
        codepipeline.start_pipeline_execution(name=name, variables=[{"name": "nope", "value": "1"}])


# Executions -----------------------------------------------------------------------------------
def test_executions_are_started_stopped_read_and_listed(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    name = unique("runs")
    decl = declaration(
        name,
        git_repo,
        ("Build", [commands("Make", ['test "#{variables.pause}" = 0 || sleep 30'])]),
        variables=[{"name": "pause", "defaultValue": "0"}],
    )
    first = create(codepipeline, decl)
    done = finished(codepipeline, name, first)
    assert done["status"] == "Succeeded" and done["trigger"]["triggerType"] == "CreatePipeline"
    assert done["artifactRevisions"][0]["revisionId"] == git_repo.commits[-1]
    assert done["variables"] == [{"name": "pause", "resolvedValue": "0"}]

    token = uuid.uuid4().hex
    second = codepipeline.start_pipeline_execution(name=name, clientRequestToken=token)
    again = codepipeline.start_pipeline_execution(name=name, clientRequestToken=token)
    assert second["pipelineExecutionId"] == again["pipelineExecutionId"]  # idempotent
    finished(codepipeline, name, second["pipelineExecutionId"])

    slow = codepipeline.start_pipeline_execution(
        name=name, variables=[{"name": "pause", "value": "1"}]
    )["pipelineExecutionId"]
    wait_for(
        lambda: (
            stage_state(codepipeline, name, "Build")
            .get("latestExecution", {})
            .get("pipelineExecutionId")
            == slow
        ),
        "the slow execution to reach Build",
    )
    stopped = codepipeline.stop_pipeline_execution(
        pipelineName=name, pipelineExecutionId=slow, abandon=True, reason="enough"
    )
    assert stopped["pipelineExecutionId"] == slow
    assert finished(codepipeline, name, slow)["status"] == "Stopped"
    with pytest.raises(codepipeline.exceptions.PipelineExecutionNotStoppableException):
        codepipeline.stop_pipeline_execution(pipelineName=name, pipelineExecutionId=slow)

    summaries = collect(
        codepipeline,
        "list_pipeline_executions",
        "pipelineExecutionSummaries",
        pipelineName=name,
        PaginationConfig={"PageSize": 1},
    )
    assert [s["pipelineExecutionId"] for s in summaries] == [
        slow,
        second["pipelineExecutionId"],
        first,
    ]
    assert summaries[0]["stopTrigger"] == {"reason": "enough"}
    assert summaries[1]["trigger"]["triggerType"] == "StartPipelineExecution"

    every = collect(
        codepipeline,
        "list_action_executions",
        "actionExecutionDetails",
        pipelineName=name,
        PaginationConfig={"PageSize": 2},
    )
    assert len(every) == 6  # Checkout and Make, three times
    only_first = codepipeline.list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": first}
    )["actionExecutionDetails"]
    assert sorted(a["actionName"] for a in only_first) == ["Checkout", "Make"]
    make = next(a for a in only_first if a["actionName"] == "Make")
    assert make["status"] == "Succeeded" and make["input"]["actionTypeId"] == COMMANDS
    abandoned = next(
        a for a in every if a["pipelineExecutionId"] == slow and a["stageName"] == "Build"
    )
    assert abandoned["status"] == "Abandoned"


def test_a_disabled_transition_holds_the_inbound_execution_until_enabled(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    name = unique("gate")
    finished(
        codepipeline,
        name,
        create(codepipeline, declaration(name, git_repo, ("Build", [commands("Make", ["true"])]))),
    )
    codepipeline.disable_stage_transition(
        pipelineName=name, stageName="Build", transitionType="Inbound", reason="freeze (release)"
    )
    held = codepipeline.start_pipeline_execution(name=name)["pipelineExecutionId"]
    build = wait_for(
        lambda: (s := stage_state(codepipeline, name, "Build")).get("inboundExecution") and s,
        "the inbound execution",
    )
    assert build["inboundExecution"]["pipelineExecutionId"] == held
    assert build["inboundExecution"]["status"] == "InProgress"
    assert build["inboundTransitionState"]["enabled"] is False
    assert build["inboundTransitionState"]["disabledReason"] == "freeze (release)"
    codepipeline.enable_stage_transition(
        pipelineName=name, stageName="Build", transitionType="Inbound"
    )
    assert finished(codepipeline, name, held)["status"] == "Succeeded"
    assert stage_state(codepipeline, name, "Build")["inboundTransitionState"]["enabled"] is True


def test_retrying_failed_actions_reruns_only_them(
    codepipeline: Any, git_repo: GitRepo, tmp_path: Path
) -> None:
    name = unique("retry")
    marker = tmp_path / f"{uuid.uuid4()}-marker"
    flaky = commands(
        "Flaky", ['test -f "$MARKER" || { touch "$MARKER"; exit 1; }'], env={"MARKER": str(marker)}
    )
    decl = declaration(name, git_repo, ("Build", [flaky, commands("Steady", ["true"])]))
    run = create(codepipeline, decl)
    failed = finished(codepipeline, name, run)
    assert failed["status"] == "Failed" and "Flaky" in failed["statusSummary"]
    codepipeline.retry_stage_execution(
        pipelineName=name, stageName="Build", pipelineExecutionId=run, retryMode="FAILED_ACTIONS"
    )
    assert finished(codepipeline, name, run)["status"] == "Succeeded"
    actions = codepipeline.list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": run}
    )["actionExecutionDetails"]
    runs = sorted(a["actionName"] for a in actions if a["stageName"] == "Build")
    assert runs == ["Flaky", "Flaky", "Steady"]
    assert (
        stage_state(codepipeline, name, "Build")["retryStageMetadata"]["manualStageRetryAttempt"]
        == 1
    )
    with pytest.raises(codepipeline.exceptions.StageNotRetryableException):
        codepipeline.retry_stage_execution(
            pipelineName=name, stageName="Build", pipelineExecutionId=run, retryMode="ALL_ACTIONS"
        )


def test_an_approval_is_given_with_the_token_from_the_pipeline_state(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    name = unique("approve")
    approval = {"name": "Gate", "actionTypeId": MANUAL}
    run = create(codepipeline, declaration(name, git_repo, ("Release", [approval])))

    def pending() -> str | None:
        latest = stage_state(codepipeline, name, "Release")["actionStates"][0].get(
            "latestExecution", {}
        )
        return latest.get("token")

    token = wait_for(pending, "the approval to wait")
    with pytest.raises(codepipeline.exceptions.InvalidApprovalTokenException):
        codepipeline.put_approval_result(
            pipelineName=name,
            stageName="Release",
            actionName="Gate",
            result={"summary": "no", "status": "Approved"},
            token=str(uuid.uuid4()),
        )
    answer = codepipeline.put_approval_result(
        pipelineName=name,
        stageName="Release",
        actionName="Gate",
        result={"summary": "ship it", "status": "Approved"},
        token=token,
    )
    assert isinstance(answer["approvedAt"], datetime)
    assert finished(codepipeline, name, run)["status"] == "Succeeded"
    with pytest.raises(codepipeline.exceptions.ApprovalAlreadyCompletedException):
        codepipeline.put_approval_result(
            pipelineName=name,
            stageName="Release",
            actionName="Gate",
            result={"summary": "again", "status": "Rejected"},
            token=token,
        )


# Action types and job workers -----------------------------------------------------------------
def rocket_type(provider: str) -> dict[str, Any]:
    return {
        "category": "Deploy",
        "provider": provider,
        "version": "1",
        "settings": {"entityUrlTemplate": "https://rockets.example/{Config:Target}"},
        "configurationProperties": [
            {
                "name": "Target",
                "required": True,
                "key": True,
                "secret": False,
                "queryable": True,
                "type": "String",
            }
        ],
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
    }


def poll(client: Any, type_id: dict[str, str]) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (jobs := client.poll_for_jobs(actionTypeId=type_id, maxBatchSize=1)["jobs"]) and jobs[0]
        ),
        f"a job of {type_id['provider']}",
    )


def test_a_job_worker_serves_a_custom_action_type(codepipeline: Any, git_repo: GitRepo) -> None:
    errors = codepipeline.exceptions
    provider = unique("Rocket")
    spec = rocket_type(provider)
    created = codepipeline.create_custom_action_type(**spec, tags=[{"key": "k", "value": "v"}])
    type_id = created["actionType"]["id"]
    assert type_id == {
        "category": "Deploy",
        "owner": "Custom",
        "provider": provider,
        "version": "1",
    }
    assert codepipeline.create_custom_action_type(**spec)["actionType"] == created["actionType"]
    changed = {**spec, "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}}
    with pytest.raises(errors.ActionTypeAlreadyExistsException):
        codepipeline.create_custom_action_type(**changed)
    listed = collect(codepipeline, "list_action_types", "actionTypes", actionOwnerFilter="Custom")
    assert created["actionType"] in listed
    described = codepipeline.get_action_type(**type_id)["actionType"]
    assert described["properties"][0] == {
        "name": "Target",
        "optional": False,
        "key": True,
        "noEcho": False,
        "queryable": True,
    }
    assert described["urls"] == {"entityUrlTemplate": "https://rockets.example/{Config:Target}"}

    name = unique("worker")
    action = {"name": "Launch", "actionTypeId": type_id, "configuration": {"Target": "moon"}}
    run = create(codepipeline, declaration(name, git_repo, ("Deploy", [action])))
    prefix = codepipeline.get_pipeline(name=name)["metadata"]["pipelineArn"].rsplit(":", 1)[0]
    type_arn = f"{prefix}:actiontype:Custom/Deploy/{provider}/1"
    assert codepipeline.list_tags_for_resource(resourceArn=type_arn)["tags"] == [
        {"key": "k", "value": "v"}
    ]
    job = poll(codepipeline, type_id)
    assert job["data"]["actionConfiguration"]["configuration"] == {"Target": "moon"}
    assert job["data"]["pipelineContext"]["pipelineExecutionId"] == run
    with pytest.raises(errors.InvalidNonceException):
        codepipeline.acknowledge_job(jobId=job["id"], nonce="wrong")
    assert (
        codepipeline.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    )
    details = codepipeline.get_job_details(jobId=job["id"])["jobDetails"]
    assert details["data"]["pipelineContext"]["stage"]["name"] == "Deploy"
    codepipeline.put_job_success_result(
        jobId=job["id"],
        continuationToken="countdown",
        executionDetails={"summary": "halfway", "percentComplete": 50},
    )
    with pytest.raises(errors.InvalidJobStateException):
        codepipeline.put_job_success_result(jobId=job["id"])
    follow = poll(codepipeline, type_id)
    assert follow["id"] != job["id"] and follow["data"]["continuationToken"] == "countdown"
    codepipeline.put_job_success_result(
        jobId=follow["id"], executionDetails={"summary": "landed", "externalExecutionId": "m-1"}
    )
    assert finished(codepipeline, name, run)["status"] == "Succeeded"

    second = codepipeline.start_pipeline_execution(name=name)["pipelineExecutionId"]
    job = poll(codepipeline, type_id)
    codepipeline.put_job_failure_result(
        jobId=job["id"], failureDetails={"type": "JobFailed", "message": "engine out"}
    )
    failed = finished(codepipeline, name, second)
    assert failed["status"] == "Failed" and "engine out" in failed["statusSummary"]

    codepipeline.delete_custom_action_type(category="Deploy", provider=provider, version="1")
    listed = collect(codepipeline, "list_action_types", "actionTypes", actionOwnerFilter="Custom")
    assert type_id not in [t["id"] for t in listed]
    with pytest.raises(errors.ValidationException):  # AWS never reuses a deleted version
        codepipeline.create_custom_action_type(**spec)
    with pytest.raises(errors.ActionTypeNotFoundException):
        codepipeline.get_action_type(**type_id)


def test_built_in_providers_are_listed_as_action_types(codepipeline: Any) -> None:
    aws = collect(codepipeline, "list_action_types", "actionTypes", actionOwnerFilter="AWS")
    providers = {(t["id"]["category"], t["id"]["provider"]) for t in aws}
    assert {("Build", "CodeBuild"), ("Compute", "Commands"), ("Approval", "Manual")} <= providers
    assert {t["id"]["owner"] for t in aws} == {"AWS"}
    lambda_type = codepipeline.get_action_type(
        category="Invoke", owner="AWS", provider="Lambda", version="1"
    )["actionType"]
    assert lambda_type["properties"][0]["name"] == "FunctionName"
    with pytest.raises(codepipeline.exceptions.RequestFailedException):
        codepipeline.update_action_type(actionType={**lambda_type, "description": "mine now"})


def test_a_third_party_job_worker_serves_its_action_type(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    errors = codepipeline.exceptions
    type_id = {
        "category": "Test",
        "owner": "ThirdParty",
        "provider": unique("Partner"),
        "version": "1",
    }
    codepipeline.update_action_type(
        actionType={
            "id": type_id,
            "description": "a partner's test service",
            "executor": {
                "type": "JobWorker",
                "configuration": {"jobWorkerExecutorConfiguration": {}},
            },
            "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
            "properties": [{"name": "Suite", "optional": False, "key": True, "noEcho": False}],
        }
    )
    declared = codepipeline.get_action_type(**type_id)["actionType"]
    assert declared["description"] == "a partner's test service"
    name = unique("partner")
    action = {
        "name": "Verify",
        "actionTypeId": type_id,
        "configuration": {"Suite": "smoke"},
        "inputArtifacts": [{"name": "Src"}],
    }
    run = create(codepipeline, declaration(name, git_repo, ("Test", [action])))
    job = wait_for(
        lambda: (
            (jobs := codepipeline.poll_for_third_party_jobs(actionTypeId=type_id)["jobs"])
            and jobs[0]
        ),
        "a third-party job",
    )
    with pytest.raises(errors.InvalidClientTokenException):
        codepipeline.get_third_party_job_details(jobId=job["jobId"], clientToken="guess")
    details = codepipeline.get_third_party_job_details(
        jobId=job["jobId"], clientToken=job["clientId"]
    )["jobDetails"]
    assert details["data"]["actionConfiguration"]["configuration"] == {"Suite": "smoke"}
    assert "pipelineExecutionId" not in details["data"]["pipelineContext"]
    ack = codepipeline.acknowledge_third_party_job(
        jobId=job["jobId"], nonce=details["nonce"], clientToken=job["clientId"]
    )
    assert ack["status"] == "InProgress"
    codepipeline.put_third_party_job_success_result(
        jobId=job["jobId"], clientToken=job["clientId"], executionDetails={"summary": "green"}
    )
    assert finished(codepipeline, name, run)["status"] == "Succeeded"
    with pytest.raises(errors.InvalidJobStateException):
        codepipeline.put_third_party_job_failure_result(
            jobId=job["jobId"],
            clientToken=job["clientId"],
            failureDetails={"type": "JobFailed", "message": "late"},
        )


# Webhooks and tags ----------------------------------------------------------------------------
def webhook(name: str, pipeline: str, **auth: Any) -> dict[str, Any]:
    return {
        "name": name,
        "targetPipeline": pipeline,
        "targetAction": "Checkout",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
        "authentication": "GITHUB_HMAC",
        "authenticationConfiguration": {"SecretToken": "s3cret"},
        **auth,
    }


def test_webhooks_are_put_listed_registered_and_deleted(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    errors = codepipeline.exceptions
    pipeline = unique("hooked")
    create(codepipeline, declaration(pipeline, git_repo, ("Build", [commands("Make", ["true"])])))
    names = [unique("hook"), unique("hook")]
    put = codepipeline.put_webhook(
        webhook=webhook(names[0], pipeline), tags=[{"key": "owner", "value": "ci"}]
    )["webhook"]
    assert put["url"].endswith(f"/webhooks/v1/{names[0]}")
    assert put["arn"].endswith(f":webhook:{names[0]}")
    assert put["definition"]["filters"] == [
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}
    ]
    codepipeline.put_webhook(
        webhook=webhook(
            names[1],
            pipeline,
            authentication="IP",
            authenticationConfiguration={"AllowedIPRange": "10.0.0.0/8"},
        )
    )
    listed = collect(codepipeline, "list_webhooks", "webhooks", PaginationConfig={"PageSize": 1})
    mine = {w["definition"]["name"]: w for w in listed if w["definition"]["name"] in names}
    assert set(mine) == set(names)
    assert mine[names[0]]["tags"] == [{"key": "owner", "value": "ci"}]
    assert mine[names[1]]["definition"]["authenticationConfiguration"] == {
        "AllowedIPRange": "10.0.0.0/8"
    }
    tags = codepipeline.list_tags_for_resource(resourceArn=put["arn"])["tags"]
    assert tags == [{"key": "owner", "value": "ci"}]

    codepipeline.register_webhook_with_third_party(webhookName=names[0])
    codepipeline.deregister_webhook_with_third_party(webhookName=names[0])
    with pytest.raises(errors.WebhookNotFoundException):
        codepipeline.register_webhook_with_third_party(webhookName=unique("ghost"))
    with pytest.raises(errors.InvalidWebhookFilterPatternException):
        codepipeline.put_webhook(
            webhook={**webhook(unique("bad"), pipeline), "filters": [{"jsonPath": "ref"}]}
        )
    with pytest.raises(errors.InvalidWebhookAuthenticationParametersException):
        codepipeline.put_webhook(
            webhook=webhook(unique("bad"), pipeline, authenticationConfiguration={})
        )
    with pytest.raises(errors.PipelineNotFoundException):
        codepipeline.put_webhook(webhook=webhook(unique("bad"), unique("nowhere")))

    for hook in names:
        codepipeline.delete_webhook(name=hook)
    remaining = collect(codepipeline, "list_webhooks", "webhooks")
    assert not {w["definition"]["name"] for w in remaining} & set(names)


def test_pipeline_tags_are_added_removed_and_listed(codepipeline: Any, git_repo: GitRepo) -> None:
    errors = codepipeline.exceptions
    name = unique("tagged")
    decl = declaration(name, git_repo, ("Build", [commands("Make", ["true"])]))
    create(codepipeline, decl, tags=[{"key": "team", "value": "caravan"}])
    arn = codepipeline.get_pipeline(name=name)["metadata"]["pipelineArn"]
    assert codepipeline.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "team", "value": "caravan"}
    ]
    more = [{"key": f"k{i}", "value": str(i)} for i in range(4)]
    codepipeline.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "ops"}, *more])
    codepipeline.untag_resource(resourceArn=arn, tagKeys=["k0", "k1"])
    tags = collect(
        codepipeline,
        "list_tags_for_resource",
        "tags",
        resourceArn=arn,
        PaginationConfig={"PageSize": 2},
    )
    assert tags == [
        {"key": "team", "value": "ops"},
        {"key": "k2", "value": "2"},
        {"key": "k3", "value": "3"},
    ]
    with pytest.raises(errors.InvalidArnException):
        codepipeline.list_tags_for_resource(resourceArn=f"arn:aws:s3:::{name}")
    with pytest.raises(errors.ResourceNotFoundException):
        codepipeline.list_tags_for_resource(resourceArn=arn + "-gone")
    with pytest.raises(errors.InvalidTagsException):
        codepipeline.tag_resource(resourceArn=arn, tags=[{"key": "aws:owner", "value": "x"}])
    many = [{"key": f"n{i}", "value": ""} for i in range(48)]
    with pytest.raises(errors.TooManyTagsException):
        codepipeline.tag_resource(resourceArn=arn, tags=many)
    assert len(codepipeline.list_tags_for_resource(resourceArn=arn)["tags"]) == 3


# Sources, rollback, conditions ----------------------------------------------------------------
def test_put_action_revision_starts_an_execution_of_that_revision(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    name = unique("revision")
    decl = declaration(name, git_repo, ("Build", [commands("Make", ["grep -q first README"])]))
    finished(codepipeline, name, create(codepipeline, decl))
    old = git_repo.commits[0]
    revision = {"revisionId": old, "revisionChangeId": old[:7], "created": datetime.now(UTC)}
    put = codepipeline.put_action_revision(
        pipelineName=name, stageName="Source", actionName="Checkout", actionRevision=revision
    )
    assert put["newRevision"] is True
    run = finished(codepipeline, name, put["pipelineExecutionId"])
    assert run["status"] == "Succeeded"  # the build saw the first commit's README
    assert run["trigger"]["triggerType"] == "PutActionRevision"
    assert run["artifactRevisions"][0]["revisionId"] == old
    again = codepipeline.put_action_revision(
        pipelineName=name, stageName="Source", actionName="Checkout", actionRevision=revision
    )
    assert (again["newRevision"], again["pipelineExecutionId"]) == (
        False,
        put["pipelineExecutionId"],
    )  # that revision already ran: no new execution
    with pytest.raises(codepipeline.exceptions.ActionNotFoundException):
        codepipeline.put_action_revision(
            pipelineName=name, stageName="Source", actionName="Nope", actionRevision=revision
        )


def test_a_stage_is_rolled_back_to_an_earlier_successful_execution(
    codepipeline: Any, git_repo: GitRepo, tmp_path: Path
) -> None:
    errors = codepipeline.exceptions
    name = unique("rollback")
    log = tmp_path / "deployed.log"
    build = commands(
        "Make",
        [
            'test "#{variables.release}" != broken',
            'echo "#{variables.release}:#{codepipeline.PipelineExecutionId}" > built.txt',
        ],
        outputs=("Built",),
    )
    deploy = commands("Ship", ['cat built.txt >> "$LOG"'], inputs=("Built",), env={"LOG": str(log)})
    decl = declaration(
        name,
        git_repo,
        ("Build", [build]),
        ("Deploy", [deploy]),
        variables=[{"name": "release", "defaultValue": "0"}],
    )
    finished(codepipeline, name, create(codepipeline, decl))

    def start(release: str) -> str:
        run = codepipeline.start_pipeline_execution(
            name=name, variables=[{"name": "release", "value": release}]
        )["pipelineExecutionId"]
        finished(codepipeline, name, run)
        return str(run)

    one, two, broken = start("1"), start("2"), start("broken")
    assert execution(codepipeline, name, broken)["status"] == "Failed"
    rollback = codepipeline.rollback_stage(
        pipelineName=name, stageName="Deploy", targetPipelineExecutionId=one
    )["pipelineExecutionId"]
    done = finished(codepipeline, name, rollback)
    assert done["status"] == "Succeeded"
    assert done["executionType"] == "ROLLBACK"
    assert done["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": one}
    assert done["trigger"]["triggerType"] == "ManualRollback"
    assert done["variables"] == [{"name": "release", "resolvedValue": "1"}]
    # Deploy ran again on the artifact execution one built; nothing before Deploy ran.
    assert log.read_text().splitlines()[-1] == f"1:{one}"
    ran = codepipeline.list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": rollback}
    )["actionExecutionDetails"]
    assert [a["actionName"] for a in ran] == ["Ship"]
    summary = codepipeline.list_pipeline_executions(pipelineName=name)[
        "pipelineExecutionSummaries"
    ][0]
    assert summary["pipelineExecutionId"] == rollback
    assert summary["rollbackMetadata"]["rollbackTargetPipelineExecutionId"] == one
    deployed = codepipeline.list_pipeline_executions(
        pipelineName=name, filter={"succeededInStage": {"stageName": "Deploy"}}
    )["pipelineExecutionSummaries"]
    assert [s["pipelineExecutionId"] for s in deployed][:3] == [rollback, two, one]
    assert stage_state(codepipeline, name, "Deploy")["latestExecution"] == {
        "pipelineExecutionId": rollback,
        "status": "Succeeded",
    }

    refusals = {
        "Source": one,  # a source stage
        "Deploy": rollback,  # a rollback execution
    }
    for stage, target in refusals.items():
        with pytest.raises(errors.UnableToRollbackStageException):
            codepipeline.rollback_stage(
                pipelineName=name, stageName=stage, targetPipelineExecutionId=target
            )
    with pytest.raises(errors.UnableToRollbackStageException) as caught:
        codepipeline.rollback_stage(
            pipelineName=name, stageName="Deploy", targetPipelineExecutionId=broken
        )
    assert "did not succeed in stage Deploy" in str(caught.value)
    with pytest.raises(errors.PipelineExecutionNotFoundException):
        codepipeline.rollback_stage(
            pipelineName=name, stageName="Deploy", targetPipelineExecutionId=str(uuid.uuid4())
        )
    codepipeline.update_pipeline(pipeline=decl)
    with pytest.raises(errors.UnableToRollbackStageException) as caught:
        codepipeline.rollback_stage(
            pipelineName=name, stageName="Deploy", targetPipelineExecutionId=two
        )
    assert "version" in str(caught.value)


def test_conditions_rules_and_deploy_targets_are_answered(
    codepipeline: Any, git_repo: GitRepo
) -> None:
    errors = codepipeline.exceptions
    name = unique("rules")
    run = create(codepipeline, declaration(name, git_repo, ("Build", [commands("Make", ["true"])])))
    finished(codepipeline, name, run)
    assert codepipeline.list_rule_types()["ruleTypes"] == []
    assert (
        collect(codepipeline, "list_rule_executions", "ruleExecutionDetails", pipelineName=name)
        == []
    )
    with pytest.raises(errors.PipelineExecutionNotFoundException):
        codepipeline.list_rule_executions(
            pipelineName=name, filter={"pipelineExecutionId": str(uuid.uuid4())}
        )
    action_id = codepipeline.list_action_executions(pipelineName=name)["actionExecutionDetails"][0][
        "actionExecutionId"
    ]
    targets = collect(
        codepipeline,
        "list_deploy_action_execution_targets",
        "targets",
        pipelineName=name,
        actionExecutionId=action_id,
    )
    assert targets == []
    with pytest.raises(errors.ActionExecutionNotFoundException):
        codepipeline.list_deploy_action_execution_targets(actionExecutionId=str(uuid.uuid4()))
    with pytest.raises(errors.ConditionNotOverridableException) as caught:
        codepipeline.override_stage_condition(
            pipelineName=name,
            stageName="Build",
            pipelineExecutionId=run,
            conditionType="BEFORE_ENTRY",
        )
    assert "beforeEntry" in str(caught.value)
