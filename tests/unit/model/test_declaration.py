"""The declaration models: both key spellings, the CreatePipeline dump, defaults and helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from declaration_helpers import FIXTURES, action, commands, valid_pipeline
from pydantic import ValidationError

from caravan.errors import ActionNotFoundError, StageNotFoundError
from caravan.model.declaration import (
    DEFAULT_ROLE_ARN,
    ActionDeclaration,
    BuildProject,
    PipelineDeclaration,
)
from caravan.model.statuses import ActionCategory, ExecutionMode


def _seed_pascal() -> dict[str, Any]:
    seed: dict[str, Any] = json.loads((FIXTURES / "seed_pipeline.json").read_text())
    seed.pop("DisableInboundStageTransitions")  # CloudFormation-only; the loader takes it out
    return seed


def test_pascal_case_and_camel_case_give_equal_models() -> None:
    from_pascal = PipelineDeclaration.model_validate(_seed_pascal())
    camel = from_pascal.model_dump(by_alias=True, exclude_none=True)
    assert "Stages" not in camel
    assert camel["stages"][0]["actions"][0]["actionTypeId"] == {
        "category": "Source",
        "owner": "ThirdParty",
        "provider": "GitHub",
        "version": "1",
    }
    assert PipelineDeclaration.model_validate(camel) == from_pascal


def test_the_dump_is_the_create_pipeline_shape() -> None:
    pipeline = PipelineDeclaration.model_validate(_seed_pascal())
    dumped = pipeline.model_dump(by_alias=True, exclude_none=True)
    assert list(dumped) == ["name", "roleArn", "artifactStore", "stages", "executionMode"]
    deploy = dumped["stages"][2]["actions"][0]
    assert deploy["runOrder"] == 1
    assert deploy["inputArtifacts"] == [{"name": "DistLambdaOutput"}]
    # configuration keys are the user's own: never re-cased
    assert set(deploy["configuration"]) == {"FunctionName", "UserParameters"}
    # the dump is plain JSON data (enums dump as their strings)
    assert json.loads(json.dumps(dumped)) == dumped
    assert type(dumped["executionMode"]) is str


def test_configuration_scalars_become_strings_like_cloudformation_writes_them() -> None:
    declared = ActionDeclaration.model_validate(
        {
            "Name": "A",
            "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": 1},
            "Configuration": {"Extract": True, "Retries": 3, "Ratio": 0.5, "Bucket": "b"},
        }
    )
    assert declared.configuration == {
        "Extract": "true",
        "Retries": "3",
        "Ratio": "0.5",
        "Bucket": "b",
    }
    assert declared.action_type_id.version == "1"


def test_an_unknown_key_is_refused_and_models_are_frozen() -> None:
    with pytest.raises(ValidationError, match="RunOrdr"):
        ActionDeclaration.model_validate({**action("A"), "RunOrdr": 2})
    declared = ActionDeclaration.model_validate(action("A"))
    with pytest.raises(ValidationError):
        declared.run_order = 3  # type: ignore[misc]


def test_defaults() -> None:
    pipeline = PipelineDeclaration.model_validate(valid_pipeline())
    assert pipeline.role_arn == DEFAULT_ROLE_ARN
    assert pipeline.execution_mode is ExecutionMode.SUPERSEDED
    assert pipeline.artifact_store is None
    ship = pipeline.action("Deploy", "Ship")
    assert (ship.run_order, ship.configuration, ship.output_artifacts) == (1, {}, [])
    assert ship.timeout_seconds is None


def test_action_type_key_and_timeouts() -> None:
    declared = ActionDeclaration.model_validate(action("A", timeoutInMinutes=2))
    assert declared.action_type_id.key() == ("Invoke", "AWS", "Lambda", "1")
    assert all(type(part) is str for part in declared.action_type_id.key())
    assert declared.action_type_id.category is ActionCategory.INVOKE
    assert declared.timeout_seconds == 120
    precise = ActionDeclaration.model_validate(action("A", TimeoutInSeconds=45))
    assert precise.timeout_seconds == 45


def test_stage_and_action_lookups() -> None:
    pipeline = PipelineDeclaration.model_validate(valid_pipeline())
    assert pipeline.stage_index("Deploy") == 2
    assert pipeline.stage("Build").actions[1].name == "Check"
    assert pipeline.action("Build", "Package").namespace == "PackageVariables"
    assert [(i, a.name) for i, _, a in pipeline.actions()] == [
        (0, "Checkout"),
        (1, "Package"),
        (1, "Check"),
        (2, "Ship"),
    ]
    with pytest.raises(StageNotFoundError, match="'Nope'"):
        pipeline.stage("Nope")
    with pytest.raises(ActionNotFoundError, match=r"stage 'Build' .* no action 'Ship'"):
        pipeline.action("Build", "Ship")


V2_FEATURES: dict[str, Callable[[dict[str, Any]], None]] = {
    "declared V2": lambda p: p.update(pipelineType="V2"),
    "QUEUED": lambda p: p.update(executionMode="QUEUED"),
    "PARALLEL": lambda p: p.update(executionMode="PARALLEL"),
    "variables": lambda p: p.update(variables=[{"name": "Env"}]),
    "triggers": lambda p: p.update(
        triggers=[
            {
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {"sourceActionName": "Checkout"},
            }
        ]
    ),
    "Commands action": lambda p: p["stages"][2]["actions"].append(commands("Run", ["true"])),
    "conditions": lambda p: p["stages"][2].update(
        beforeEntry={"conditions": [{"result": "FAIL", "rules": [{"name": "Window"}]}]}
    ),
}


@pytest.mark.parametrize("feature", list(V2_FEATURES))
def test_a_v2_feature_makes_the_pipeline_v2(feature: str) -> None:
    data = valid_pipeline()
    assert PipelineDeclaration.model_validate(data).effective_type == "V1"
    V2_FEATURES[feature](data)
    assert PipelineDeclaration.model_validate(data).effective_type == "V2"


def test_stage_conditions_keep_their_rules_untouched() -> None:
    data = valid_pipeline()
    rule = {"name": "Alarm", "ruleTypeId": {"category": "Rule", "provider": "CloudWatchAlarm"}}
    data["stages"][2]["OnFailure"] = {
        "Result": "RETRY",
        "RetryConfiguration": {"RetryMode": "FAILED_ACTIONS"},
        "Conditions": [{"Result": "ROLLBACK", "Rules": [rule]}],
    }
    stage = PipelineDeclaration.model_validate(data).stages[2]
    assert stage.on_failure is not None
    assert stage.on_failure.retry_configuration is not None
    assert stage.on_failure.retry_configuration.retry_mode == "FAILED_ACTIONS"
    assert stage.on_failure.conditions is not None
    assert stage.on_failure.conditions[0].rules == [rule]


def test_a_build_project_accepts_create_project_nesting() -> None:
    flat = BuildProject.model_validate(
        {
            "name": "app",
            "buildspec": "ci/build.yml",
            "environmentVariables": [{"name": "STAGE", "value": "test"}],
        }
    )
    create_project = BuildProject.model_validate(
        {
            "name": "app",
            "source": {"type": "CODEPIPELINE", "buildspec": "ci/build.yml"},
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "environmentVariables": [{"name": "STAGE", "value": "test"}],
            },
            "serviceRole": "arn:aws:iam::1:role/build",
            "artifacts": {"type": "CODEPIPELINE"},
        }
    )
    cloudformation = BuildProject.model_validate(
        {
            "Name": "app",
            "Source": {"Type": "CODEPIPELINE", "BuildSpec": "ci/build.yml"},
            "Environment": {"EnvironmentVariables": [{"Name": "STAGE", "Value": "test"}]},
        }
    )
    assert flat == create_project == cloudformation
    with pytest.raises(ValidationError, match="image"):
        BuildProject.model_validate({"name": "app", "image": "x"})


def test_a_build_project_source_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError, match="source must be a mapping"):
        BuildProject.model_validate({"name": "app", "source": "buildspec.yml"})
