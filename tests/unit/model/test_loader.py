"""Loading declarations: JSON and YAML, the three document shapes, and errors with their paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from declaration_helpers import FIXTURES, action, issues_of, load_ok, valid_pipeline
from hypothesis import given, settings
from hypothesis import strategies as st

from caravan.errors import DeclarationError, InvalidInputError, Issue
from caravan.model.loader import load_data, load_document, load_file


def _declaration_error(text: str, **options: Any) -> DeclarationError:
    with pytest.raises(DeclarationError) as caught:
        load_document(text, **options)
    return caught.value


# Formats and shapes ---------------------------------------------------------------------------


def test_json_and_yaml_give_the_same_document() -> None:
    pipeline = valid_pipeline()
    from_json = load_document(json.dumps(pipeline))
    from_yaml = load_document(yaml.safe_dump(pipeline))
    assert from_json == from_yaml
    assert from_json.pipeline.stages[1].actions[1].run_order == 2


def test_the_create_pipeline_request_shape_with_build_projects() -> None:
    request = {
        "pipeline": valid_pipeline(),
        "tags": [{"key": "team", "value": "core"}],
        "metadata": {"pipelineArn": "arn:aws:codepipeline:local:0:demo", "created": 1.5},
        "buildProjects": [
            {"name": "app", "source": {"type": "CODEPIPELINE", "buildspec": "ci/build.yml"}},
        ],
    }
    document = load_document(json.dumps(request))
    assert document.pipeline.name == "demo"
    assert [(t.key, t.value) for t in document.tags] == [("team", "core")]
    assert document.build_projects["app"].buildspec == "ci/build.yml"


def test_a_bare_declaration_equals_the_request_shape() -> None:
    bare = load_data(valid_pipeline())
    wrapped = load_data({"pipeline": valid_pipeline()})
    assert bare == wrapped


def test_an_unknown_top_level_key_is_an_issue_unless_the_caller_allows_it() -> None:
    manifest = {"pipeline": valid_pipeline(), "functions": {"api": {}}, "site": {}}
    assert issues_of(manifest) == [
        Issue(
            key,
            "unknown top-level key (expected pipeline, tags, metadata, buildProjects, "
            "disabledInboundTransitions)",
        )
        for key in ("functions", "site")
    ]
    assert load_data(manifest, allow_extra_top_level=True).pipeline.name == "demo"


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Branch: {Type: String, Default: main}
  Stage: {Type: String, Default: test}
Resources:
  ArtifactBucket:
    Type: AWS::S3::Bucket
  AppBuild:
    Type: AWS::CodeBuild::Project
    Properties:
      Name: !Sub "dromedary-${Stage}-build"
      ServiceRole: !GetAtt BuildRole.Arn
      Artifacts: {Type: CODEPIPELINE}
      Source:
        Type: CODEPIPELINE
        BuildSpec: |
          version: 0.2
          phases: {build: {commands: [make]}}
      Environment:
        Type: LINUX_CONTAINER
        Image: aws/codebuild/standard:7.0
        ComputeType: BUILD_GENERAL1_SMALL
        EnvironmentVariables:
          - {Name: STAGE, Value: !Ref Stage}
  Delivery:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      RoleArn: arn:aws:iam::123456789012:role/delivery
      RestartExecutionOnUpdate: true
      Tags: [{Key: team, Value: core}]
      DisableInboundStageTransitions:
        - {StageName: Release, Reason: manual gate}
      Stages:
        - Name: Source
          Actions:
            - Name: Checkout
              ActionTypeId: {Category: Source, Owner: Custom, Provider: Git, Version: 1}
              Configuration: {Repository: ., Branch: !Ref Branch, PollForSourceChanges: false}
              OutputArtifacts: [{Name: Src}]
        - Name: Build
          Actions:
            - Name: Compile
              ActionTypeId: {Category: Build, Owner: AWS, Provider: CodeBuild, Version: "1"}
              Configuration:
                ProjectName: !Ref AppBuild
                Tag: !Join ["-", [build, !Ref Stage]]
              InputArtifacts: [{Name: Src}]
              OutputArtifacts: [{Name: Bin}]
        - Name: Release
          Actions:
            - Name: Ship
              ActionTypeId: {Category: Invoke, Owner: AWS, Provider: Lambda, Version: "1"}
              Configuration:
                FunctionName: ship
                UserParameters: "#{codepipeline.PipelineExecutionId}"
              InputArtifacts: [{Name: Bin}]
              RunOrder: 2
"""


def test_a_cloudformation_template_gives_the_pipeline_and_its_build_projects() -> None:
    document = load_document(TEMPLATE, source="template.yml")
    pipeline = document.pipeline
    assert pipeline.name == "Delivery"  # no Name property: the logical id
    assert pipeline.role_arn == "arn:aws:iam::123456789012:role/delivery"
    checkout = pipeline.action("Source", "Checkout")
    assert checkout.action_type_id.key() == ("Source", "Custom", "Git", "1")
    assert checkout.configuration == {
        "Repository": ".",
        "Branch": "main",  # !Ref to a parameter: its Default
        "PollForSourceChanges": "false",  # booleans become CloudFormation's strings
    }
    compile_config = pipeline.action("Build", "Compile").configuration
    assert compile_config == {"ProjectName": "dromedary-test-build", "Tag": "build-test"}
    project = document.build_projects["dromedary-test-build"]
    assert project.buildspec == "version: 0.2\nphases: {build: {commands: [make]}}\n"
    assert [(v.name, v.value, v.type) for v in project.environment_variables] == [
        ("STAGE", "test", "PLAINTEXT")
    ]
    assert [(t.key, t.value) for t in document.tags] == [("team", "core")]
    assert [(t.stage_name, t.reason) for t in document.disabled_inbound_transitions] == [
        ("Release", "manual gate")
    ]
    assert document.source == "template.yml"


def test_an_intrinsic_function_left_in_a_value_is_an_issue_at_its_path() -> None:
    template = TEMPLATE.replace(
        "RoleArn: arn:aws:iam::123456789012:role/delivery", "RoleArn: !GetAtt Role.Arn"
    ).replace("RunOrder: 2", "RunOrder: !Ref Order")
    error = _declaration_error(template)
    assert error.issues == [
        Issue(
            "roleArn",
            "CloudFormation intrinsic Fn::GetAtt is not supported here; use a literal value",
        ),
        Issue(
            "stages[2].actions[0].runOrder",
            "CloudFormation intrinsic Ref is not supported here; use a literal value (caravan "
            "resolves only Ref to a parameter with a Default, a build project or the pipeline)",
        ),
    ]


def test_a_cloudformation_transition_names_its_own_key() -> None:
    template = TEMPLATE.replace("StageName: Release", "StageName: Nowhere")
    assert _declaration_error(template).issues == [
        Issue(
            "disableInboundStageTransitions[0].stageName",
            "'Nowhere' names no stage of the pipeline",
        )
    ]


@pytest.mark.parametrize("count", [0, 2])
def test_a_template_must_hold_exactly_one_pipeline(count: int) -> None:
    resources = {
        f"P{i}": {"Type": "AWS::CodePipeline::Pipeline", "Properties": valid_pipeline()}
        for i in range(count)
    }
    found = ", ".join(resources) or "none"
    assert issues_of({"Resources": resources}) == [
        Issue(
            "Resources",
            "the template must declare exactly one AWS::CodePipeline::Pipeline resource "
            f"(found: {found})",
        )
    ]


# Syntax errors --------------------------------------------------------------------------------


def test_bad_json_names_line_and_column() -> None:
    error = _declaration_error('{\n  "name": "demo",\n  "stages": [,]\n}', source="p.json")
    assert error.issues == [Issue("line 3, column 14", "Expecting value")]
    assert "in p.json" in error.message


def test_bad_yaml_names_line_and_column() -> None:
    error = _declaration_error("name: demo\nstages:\n  - name: [unclosed\n")
    assert len(error.issues) == 1
    assert error.issues[0].path == "line 4, column 1"


def test_a_duplicate_key_is_refused() -> None:
    error = _declaration_error("name: demo\nstages: []\nname: other\n")
    assert error.issues == [Issue("line 3, column 1", "duplicate key 'name'")]
    error = _declaration_error('{"name": "a", "name": "b"}')
    assert error.issues == [Issue("", "duplicate key 'name'")]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "the document is empty"),
        (
            "  \n# only a comment\n",
            "the document must be a mapping (a JSON object or a YAML mapping)",
        ),
        ("- a\n- b\n", "the document must be a mapping (a JSON object or a YAML mapping)"),
        ('{"pipeline": "demo"}', "must be a mapping (a pipeline declaration)"),
    ],
)
def test_a_document_that_is_not_a_declaration(text: str, rule: str) -> None:
    assert [i.rule for i in _declaration_error(text).issues] == [rule]


# Files ----------------------------------------------------------------------------------------


def test_load_file_reads_yaml_and_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(valid_pipeline()))
    assert load_file(path).source == str(path)
    broken = valid_pipeline()
    broken["name"] = "bad name"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(DeclarationError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    assert f"pipeline declaration in {path} has 1 problem" in caught.value.message


def test_load_file_reports_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"cannot read pipeline declaration .*missing\.yml"):
        load_file(tmp_path / "missing.yml")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(DeclarationError, match="not UTF-8 text"):
        load_file(binary)


def test_the_seed_pipeline_loads() -> None:
    document = load_file(FIXTURES / "seed_pipeline.json")
    pipeline = document.pipeline
    assert [s.name for s in pipeline.stages] == ["Source", "Commit", "Acceptance", "Production"]
    assert [a.run_order for a in pipeline.stage("Acceptance").actions] == [1, 1, 2, 3]
    source = pipeline.action("Source", "Source")
    assert source.action_type_id.key() == ("Source", "ThirdParty", "GitHub", "1")
    deploy = pipeline.action("Production", "DeployProdApp")
    assert deploy.configuration["UserParameters"].startswith("type=lambda&alias=prod&function=")
    assert pipeline.effective_type == "V1"


# Shape errors, translated ---------------------------------------------------------------------


def test_shape_errors_are_plain_sentences_at_camel_case_paths() -> None:
    pipeline = {
        "Name": "demo",
        "Stages": [
            {"Name": "Source", "Actions": [{"Name": "S", "ActionTypeId": {"Category": "Fetch"}}]},
            {"Name": "Build", "Actions": [{"Name": "B", "RunOrder": "first"}]},
        ],
    }
    assert issues_of(pipeline) == [
        Issue(
            "stages[0].actions[0].actionTypeId.category",
            "must be 'Source', 'Build', 'Deploy', 'Test', 'Invoke', 'Approval' or 'Compute'",
        ),
        Issue("stages[0].actions[0].actionTypeId.owner", "is required"),
        Issue("stages[0].actions[0].actionTypeId.provider", "is required"),
        Issue("stages[0].actions[0].actionTypeId.version", "is required"),
        Issue("stages[1].actions[0].actionTypeId", "is required"),
        Issue("stages[1].actions[0].runOrder", "must be a whole number"),
    ]


def test_five_problems_are_reported_at_once_with_exact_paths() -> None:
    pipeline = json.loads((FIXTURES / "seed_pipeline.json").read_text())
    commit, acceptance, production = pipeline["Stages"][1:]
    commit["Actions"][0]["RunOrdr"] = 2  # a typo: unknown field
    commit["Actions"][1]["RunOrder"] = 1000
    acceptance["Actions"][1]["InputArtifacts"] = [{"Name": "DistApiOutput"}]
    acceptance["Actions"][3]["Configuration"]["UserParameters"] = "task=#{variables.Task}"
    production["Name"] = "Acceptance"
    assert issues_of(pipeline) == [
        Issue("stages[1].actions[0].RunOrdr", "unknown field"),
        Issue("stages[3].name", "duplicate stage name 'Acceptance'"),
        Issue("stages[1].actions[1].runOrder", "runOrder must be between 1 and 999"),
        Issue(
            "stages[2].actions[1].inputArtifacts[0].name",
            "input artifact 'DistApiOutput' is not produced by an earlier action "
            "(an earlier stage, or a lower runOrder in this stage)",
        ),
        Issue(
            "stages[2].actions[3].configuration.UserParameters",
            "#{variables.Task}: no pipeline variable 'Task' is declared",
        ),
    ]


def test_the_error_payload_lists_every_issue() -> None:
    pipeline = valid_pipeline()
    pipeline["stages"][2]["actions"].append(action("Late", inputs=("Nope",), runOrder=0))
    with pytest.raises(DeclarationError) as caught:
        load_data(pipeline, source="p.yml")
    body = caught.value.to_dict()
    assert body["__type"] == "InvalidStructureException"
    assert body["issues"] == [
        {"path": "stages[2].actions[1].runOrder", "rule": "runOrder must be between 1 and 999"},
        {
            "path": "stages[2].actions[1].inputArtifacts[0].name",
            "rule": "input artifact 'Nope' is not produced by an earlier action "
            "(an earlier stage, or a lower runOrder in this stage)",
        },
    ]
    assert caught.value.exit_code == 2


# Round trips ----------------------------------------------------------------------------------


def test_a_dumped_declaration_loads_back_equal() -> None:
    document = load_file(FIXTURES / "seed_pipeline.json")
    dumped = document.pipeline.model_dump(by_alias=True, exclude_none=True)
    assert load_document(json.dumps(dumped)).pipeline == document.pipeline
    assert load_document(yaml.safe_dump(dumped)).pipeline == document.pipeline


def test_a_document_request_loads_back_equal() -> None:
    document = load_document(TEMPLATE)
    request = document.to_request()
    assert set(request) == {"pipeline", "tags", "buildProjects", "disabledInboundTransitions"}
    assert load_document(json.dumps(request)) == document.model_copy(update={"source": None})
    assert load_ok(request).build_projects == document.build_projects


def test_an_intrinsic_in_configuration_keeps_the_configuration_key() -> None:
    template = TEMPLATE.replace(
        "{Repository: ., Branch: !Ref Branch,", "{Owner: !Ref User, Branch: main,"
    )
    assert _declaration_error(template).issues[0].path == "stages[0].actions[0].configuration.Owner"


def test_a_broken_build_project_is_reported_once() -> None:
    template = TEMPLATE.replace("- {Name: STAGE, Value: !Ref Stage}", "- {Name: STAGE}")
    assert _declaration_error(template).issues == [
        Issue("Resources.AppBuild.Properties.environmentVariables[0].value", "is required")
    ]


def test_flow_style_yaml_is_not_mistaken_for_bad_json() -> None:
    text = "{name: demo, stages: [{name: S, actions: []}]}"
    assert [i.path for i in _declaration_error(text).issues] == [
        "stages",
        "stages",
        "stages[0].actions",
    ]


def test_yaml_that_refers_to_itself_or_explodes_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "\n".join([*lines, "name: demo", "stages: *a8"])
    assert _declaration_error(bomb).issues == [
        Issue("", "the document is too large or refers to itself (YAML aliases)")
    ]
    loop = "name: demo\nstages: &s [*s]\n"
    assert _declaration_error(loop).issues == [
        Issue("", "the document is too large or refers to itself (YAML aliases)")
    ]


# Robustness -----------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


def _replace(data: Any, path: list[int], value: Any) -> Any:
    """``data`` with the node reached by following ``path`` (indices modulo size) replaced."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[key] = _replace(data[key], path[1:], value)  # type: ignore[index]
    return copy


@settings(max_examples=150, deadline=None)
@given(path=st.lists(st.integers(min_value=0, max_value=50), max_size=7), value=_JSON)
def test_any_damage_to_a_declaration_gives_issues_never_a_crash(
    path: list[int], value: Any
) -> None:
    damaged = _replace(valid_pipeline(), path, value)
    try:
        load_data(damaged)
    except DeclarationError as error:
        assert error.issues
        assert all(isinstance(i.path, str) and i.rule for i in error.issues)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_gives_a_document_or_issues(text: str) -> None:
    try:
        load_document(text)
    except DeclarationError as error:
        assert error.issues
