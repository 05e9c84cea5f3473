"""Each structure rule of a pipeline declaration (§1.1, §1.10, §1.16): broken, and kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from declaration_helpers import action, commands, git_source, issues_of, valid_pipeline

from caravan.errors import Issue
from caravan.model.loader import load_data
from caravan.model.validation import validate

Mutation = Callable[[dict[str, Any]], None]


def _stage(p: dict[str, Any], i: int) -> dict[str, Any]:
    stage: dict[str, Any] = p["stages"][i]
    return stage


def _act(p: dict[str, Any], s: int, a: int) -> dict[str, Any]:
    act: dict[str, Any] = p["stages"][s]["actions"][a]
    return act


def _lambda_stage(name: str, count: int) -> dict[str, Any]:
    return {"name": name, "actions": [action(f"A{i}") for i in range(count)]}


# (id, mutation, expected issue) — the valid pipeline with one rule broken.
BROKEN: list[tuple[str, Mutation, Issue]] = [
    (
        "pipeline name pattern",
        lambda p: p.update(name="my pipeline"),
        Issue("name", r"must match [A-Za-z0-9.@\-_]+"),
    ),
    (
        "pipeline name length",
        lambda p: p.update(name="p" * 101),
        Issue("name", "must be at most 100 characters"),
    ),
    (
        "stage name pattern",
        lambda p: _stage(p, 1).update(name="Build!"),
        Issue("stages[1].name", r"must match [A-Za-z0-9.@\-_]+"),
    ),
    (
        "action name pattern",
        lambda p: _act(p, 1, 0).update(name="Pack age"),
        Issue("stages[1].actions[0].name", r"must match [A-Za-z0-9.@\-_]+"),
    ),
    (
        "too many stages",
        lambda p: p["stages"].extend(_lambda_stage(f"S{i}", 1) for i in range(48)),
        Issue("stages", "a pipeline must have 2 to 50 stages, found 51"),
    ),
    (
        "empty stage",
        lambda p: _stage(p, 2).update(actions=[]),
        Issue("stages[2].actions", "a stage must have 1 to 50 actions, found 0"),
    ),
    (
        "too many actions in a stage",
        lambda p: p["stages"].__setitem__(2, _lambda_stage("Deploy", 51)),
        Issue("stages[2].actions", "a stage must have 1 to 50 actions, found 51"),
    ),
    (
        "too many actions in the pipeline",
        lambda p: p["stages"].extend(_lambda_stage(f"S{i}", 50) for i in range(10)),
        Issue("stages", "a pipeline may have at most 500 actions, found 504"),
    ),
    (
        "non-source action in the first stage",
        lambda p: _stage(p, 0)["actions"].append(action("Lint")),
        Issue(
            "stages[0].actions[1].actionTypeId.category",
            "the first stage may contain only Source actions",
        ),
    ),
    (
        "source action outside the first stage",
        lambda p: _stage(p, 2)["actions"].append(git_source("Other", "Other")),
        Issue(
            "stages[2].actions[1].actionTypeId.category",
            "Source actions are allowed only in the first stage",
        ),
    ),
    (
        "duplicate stage name",
        lambda p: _stage(p, 2).update(name="Build"),
        Issue("stages[2].name", "duplicate stage name 'Build'"),
    ),
    (
        "duplicate action name in a stage",
        lambda p: _act(p, 1, 1).update(name="Package"),
        Issue("stages[1].actions[1].name", "duplicate action name 'Package' in stage 'Build'"),
    ),
    (
        "duplicate output artifact",
        lambda p: _act(p, 2, 0).update(outputArtifacts=[{"name": "Dist"}]),
        Issue(
            "stages[2].actions[0].outputArtifacts[0].name",
            "duplicate output artifact name 'Dist' (also produced by action 'Package' in stage "
            "'Build')",
        ),
    ),
    (
        "artifact name pattern",
        lambda p: _act(p, 2, 0).update(outputArtifacts=[{"name": "site.zip"}]),
        Issue("stages[2].actions[0].outputArtifacts[0].name", r"must match [a-zA-Z0-9_\-]+"),
    ),
    (
        "runOrder zero",
        lambda p: _act(p, 2, 0).update(runOrder=0),
        Issue("stages[2].actions[0].runOrder", "runOrder must be between 1 and 999"),
    ),
    (
        "runOrder above 999",
        lambda p: _act(p, 2, 0).update(runOrder=1000),
        Issue("stages[2].actions[0].runOrder", "runOrder must be between 1 and 999"),
    ),
    (
        "input artifact produced nowhere",
        lambda p: _act(p, 2, 0).update(inputArtifacts=[{"name": "Foo"}]),
        Issue(
            "stages[2].actions[0].inputArtifacts[0].name",
            "input artifact 'Foo' is not produced by an earlier action "
            "(an earlier stage, or a lower runOrder in this stage)",
        ),
    ),
    (
        "input artifact produced at the same runOrder",
        lambda p: _act(p, 1, 1).update(runOrder=1),
        Issue(
            "stages[1].actions[1].inputArtifacts[0].name",
            "input artifact 'Dist' is not produced by an earlier action "
            "(an earlier stage, or a lower runOrder in this stage); action 'Package' in stage "
            "'Build' produces it but does not run earlier",
        ),
    ),
    (
        "namespace pattern",
        lambda p: _act(p, 1, 0).update(namespace="Package.Vars"),
        Issue("stages[1].actions[0].namespace", r"must match [A-Za-z0-9@\-_]+"),
    ),
    (
        "duplicate namespace",
        lambda p: _act(p, 2, 0).update(namespace="PackageVariables"),
        Issue(
            "stages[2].actions[0].namespace",
            "duplicate namespace 'PackageVariables' (also declared by action 'Package' in stage "
            "'Build')",
        ),
    ),
    (
        "namespace equal to an artifact name",
        lambda p: _act(p, 2, 0).update(namespace="Dist"),
        Issue("stages[2].actions[0].namespace", "namespace 'Dist' must not equal an artifact name"),
    ),
    (
        "reserved namespace",
        lambda p: _act(p, 2, 0).update(namespace="codepipeline"),
        Issue("stages[2].actions[0].namespace", "namespace 'codepipeline' is reserved"),
    ),
    (
        "configuration key too long",
        lambda p: _act(p, 2, 0).update(configuration={"K" * 51: "v"}),
        Issue(
            "stages[2].actions[0].configuration", f"key {'K' * 51!r} is longer than 50 characters"
        ),
    ),
    (
        "configuration value too long",
        lambda p: _act(p, 2, 0).update(configuration={"FunctionName": "f" * 1001}),
        Issue("stages[2].actions[0].configuration.FunctionName", "must be at most 1000 characters"),
    ),
    (
        "both artifactStore and artifactStores",
        lambda p: p.update(
            artifactStore={"type": "S3", "location": "b"},
            artifactStores=[{"region": "eu-west-1", "artifactStore": {"location": "b"}}],
        ),
        Issue("artifactStores", "give either artifactStore or artifactStores, not both"),
    ),
    (
        "QUEUED on an explicit V1 pipeline",
        lambda p: p.update(pipelineType="V1", executionMode="QUEUED"),
        Issue("executionMode", "executionMode QUEUED requires pipelineType V2"),
    ),
    (
        "PARALLEL on an explicit V1 pipeline",
        lambda p: p.update(pipelineType="V1", executionMode="PARALLEL"),
        Issue("executionMode", "executionMode PARALLEL requires pipelineType V2"),
    ),
    (
        "pipeline variables on an explicit V1 pipeline",
        lambda p: p.update(pipelineType="V1", variables=[{"name": "Env"}]),
        Issue("variables", "declaring pipeline variables requires pipelineType V2"),
    ),
    (
        "stage conditions on an explicit V1 pipeline",
        lambda p: (
            p.update(pipelineType="V1"),
            _stage(p, 2).update(onSuccess={"conditions": [{"result": "FAIL", "rules": []}]}),
        ),
        Issue("stages[2].onSuccess", "declaring stage conditions requires pipelineType V2"),
    ),
    (
        "the Commands action on an explicit V1 pipeline",
        lambda p: (
            p.update(pipelineType="V1"),
            _stage(p, 2)["actions"].append(commands("Run", ["true"])),
        ),
        Issue("stages[2].actions[1].actionTypeId", "the Commands action requires pipelineType V2"),
    ),
    (
        "too many pipeline variables",
        lambda p: p.update(variables=[{"name": f"V{i}"} for i in range(51)]),
        Issue("variables", "at most 50 pipeline variables are allowed, found 51"),
    ),
    (
        "pipeline variable name pattern",
        lambda p: p.update(variables=[{"name": "my var"}]),
        Issue("variables[0].name", r"must match [A-Za-z0-9@\-_]+"),
    ),
    (
        "pipeline variable name length",
        lambda p: p.update(variables=[{"name": "v" * 129}]),
        Issue("variables[0].name", "must be at most 128 characters"),
    ),
    (
        "pipeline variable default too long",
        lambda p: p.update(variables=[{"name": "V", "defaultValue": "x" * 1001}]),
        Issue("variables[0].defaultValue", "must be at most 1000 characters"),
    ),
    (
        "duplicate pipeline variable",
        lambda p: p.update(variables=[{"name": "V"}, {"name": "V"}]),
        Issue("variables[1].name", "duplicate pipeline variable name 'V'"),
    ),
    (
        "too many environment variables",
        lambda p: _act(p, 2, 0).update(
            environmentVariables=[{"name": f"E{i}", "value": "x"} for i in range(11)]
        ),
        Issue(
            "stages[2].actions[0].environmentVariables",
            "at most 10 environment variables are allowed, found 11",
        ),
    ),
    (
        "too many commands",
        lambda p: _stage(p, 2)["actions"].append(commands("Run", ["true"] * 51)),
        Issue("stages[2].actions[1].commands", "at most 50 commands are allowed, found 51"),
    ),
    (
        "too many output variables",
        lambda p: _stage(p, 2)["actions"].append(
            commands("Run", ["true"], outputVariables=[f"O{i}" for i in range(16)])
        ),
        Issue(
            "stages[2].actions[1].outputVariables",
            "at most 15 output variables are allowed, found 16",
        ),
    ),
    (
        "too many output files",
        lambda p: _stage(p, 2)["actions"].append(
            commands("Run", ["true"], outputArtifacts=[{"name": "Out", "files": ["*"] * 11}])
        ),
        Issue(
            "stages[2].actions[1].outputArtifacts[0].files",
            "at most 10 file patterns are allowed, found 11",
        ),
    ),
    (
        "Commands action without commands",
        lambda p: _stage(p, 2)["actions"].append(commands("Run", [])),
        Issue("stages[2].actions[1].commands", "the Commands action requires commands"),
    ),
    (
        "timeoutInMinutes zero",
        lambda p: _act(p, 2, 0).update(timeoutInMinutes=0),
        Issue("stages[2].actions[0].timeoutInMinutes", "must be between 1 and 86400"),
    ),
    (
        "timeoutInSeconds too long",
        lambda p: _act(p, 2, 0).update(timeoutInSeconds=5_184_001),
        Issue("stages[2].actions[0].timeoutInSeconds", "must be between 1 and 5184000"),
    ),
    (
        "both timeouts",
        lambda p: _act(p, 2, 0).update(timeoutInSeconds=30, timeoutInMinutes=1),
        Issue(
            "stages[2].actions[0].timeoutInSeconds",
            "give either timeoutInMinutes or timeoutInSeconds, not both",
        ),
    ),
    (
        "provider too long",
        lambda p: _act(p, 2, 0)["actionTypeId"].update(provider="P" * 36),
        Issue("stages[2].actions[0].actionTypeId.provider", "must be at most 35 characters"),
    ),
    (
        "version too long",
        lambda p: _act(p, 2, 0)["actionTypeId"].update(version="1234567890"),
        Issue("stages[2].actions[0].actionTypeId.version", "must be at most 9 characters"),
    ),
    (
        "rollback in PARALLEL mode",
        lambda p: (
            p.update(executionMode="PARALLEL"),
            _stage(p, 2).update(onFailure={"result": "ROLLBACK"}),
        ),
        Issue("stages[2].onFailure.result", "rollback is not available in PARALLEL mode"),
    ),
    (
        "CodeBuild project not declared",
        lambda p: _stage(p, 2)["actions"].append(
            action("Build", "Build", "AWS", "CodeBuild", configuration={"ProjectName": "app"})
        ),
        Issue(
            "stages[2].actions[1].configuration.ProjectName",
            "build project 'app' is not declared (declared: none)",
        ),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_a_broken_rule_is_reported_at_its_path(mutate: Mutation, expected: Issue) -> None:
    pipeline = valid_pipeline()
    mutate(pipeline)
    assert issues_of(pipeline) == [expected]


# (id, mutation) — the valid pipeline changed at the edge of a rule, still valid.
KEPT: list[tuple[str, Mutation]] = [
    ("name at 100 characters", lambda p: p.update(name="p" * 100)),
    ("name with . @ - _", lambda p: p.update(name="a.b@c-d_e")),
    ("50 stages", lambda p: p["stages"].extend(_lambda_stage(f"S{i}", 1) for i in range(47))),
    ("50 actions in a stage", lambda p: p["stages"].__setitem__(2, _lambda_stage("Deploy", 50))),
    ("500 actions", lambda p: p["stages"].extend(_lambda_stage(f"S{i}", 50) for i in range(9))),
    ("two source actions", lambda p: _stage(p, 0)["actions"].append(git_source("B", "B"))),
    ("same action name in two stages", lambda p: _act(p, 2, 0).update(name="Package")),
    ("runOrder 999", lambda p: _act(p, 2, 0).update(runOrder=999)),
    ("runOrders need not be contiguous", lambda p: _act(p, 1, 1).update(runOrder=7)),
    ("no artifact store", lambda p: p.pop("artifactStore", None)),
    ("artifactStore alone", lambda p: p.update(artifactStore={"location": "bucket"})),
    ("QUEUED without pipelineType", lambda p: p.update(executionMode="QUEUED")),
    ("PARALLEL on V2", lambda p: p.update(executionMode="PARALLEL", pipelineType="V2")),
    ("configuration key of 50", lambda p: _act(p, 2, 0).update(configuration={"K" * 50: "v"})),
    ("value of 1000", lambda p: _act(p, 2, 0).update(configuration={"F": "f" * 1000})),
    ("50 variables", lambda p: p.update(variables=[{"name": f"V{i}"} for i in range(50)])),
    ("timeoutInMinutes 1 on any action", lambda p: _act(p, 2, 0).update(timeoutInMinutes=1)),
    ("timeoutInMinutes 86400", lambda p: _act(p, 2, 0).update(timeoutInMinutes=86400)),
    ("timeoutInSeconds 5184000", lambda p: _act(p, 2, 0).update(timeoutInSeconds=5_184_000)),
    (
        "10 environment variables",
        lambda p: _act(p, 2, 0).update(
            environmentVariables=[{"name": f"E{i}", "value": "x"} for i in range(10)]
        ),
    ),
    (
        "Commands action with commands and outputs",
        lambda p: _stage(p, 2)["actions"].append(
            commands(
                "Run",
                ["true"] * 50,
                outputVariables=[f"O{i}" for i in range(15)],
                outputArtifacts=[{"name": "Out", "files": ["*"] * 10}],
            )
        ),
    ),
    (
        "rollback in SUPERSEDED mode",
        lambda p: _stage(p, 2).update(onFailure={"result": "ROLLBACK"}),
    ),
]


@pytest.mark.parametrize("mutate", [k[1] for k in KEPT], ids=[k[0] for k in KEPT])
def test_a_declaration_at_the_edge_of_a_rule_loads(mutate: Mutation) -> None:
    pipeline = valid_pipeline()
    mutate(pipeline)
    assert issues_of(pipeline) == []


def test_a_single_stage_pipeline_is_refused() -> None:
    pipeline = valid_pipeline()
    pipeline["stages"] = pipeline["stages"][:1]
    assert issues_of(pipeline) == [
        Issue("stages", "a pipeline must have 2 to 50 stages, found 1"),
        Issue("stages", "a pipeline needs at least one action that is not a Source action"),
    ]


def test_first_stage_needs_a_source_action() -> None:
    pipeline = valid_pipeline()
    pipeline["stages"][0]["actions"] = [action("Lint")]
    assert Issue(
        "stages[0].actions", "the first stage must contain at least one Source action"
    ) in (issues_of(pipeline))


def test_a_pipeline_of_only_source_actions_is_refused() -> None:
    pipeline = valid_pipeline()
    pipeline["stages"] = [
        pipeline["stages"][0],
        {"name": "More", "actions": [git_source("B", "B")]},
    ]
    assert Issue("stages", "a pipeline needs at least one action that is not a Source action") in (
        issues_of(pipeline)
    )


def _with_trigger(**git: Any) -> dict[str, Any]:
    pipeline = valid_pipeline()
    pipeline["triggers"] = [
        {"providerType": "CodeStarSourceConnection", "gitConfiguration": {**git}}
    ]
    return pipeline


def test_a_trigger_must_name_a_source_action() -> None:
    assert issues_of(_with_trigger(sourceActionName="Package")) == [
        Issue(
            "triggers[0].gitConfiguration.sourceActionName",
            "'Package' names no source action of the pipeline",
        )
    ]
    assert issues_of(_with_trigger(sourceActionName="Checkout")) == []


def test_trigger_filters_are_limited() -> None:
    push = [{"branches": {"includes": ["main"]}}] * 4
    nine = {"includes": [f"b{i}" for i in range(9)]}
    pull = [{"events": ["OPEN"], "branches": nine}]
    assert issues_of(_with_trigger(sourceActionName="Checkout", push=push, pullRequest=pull)) == [
        Issue("triggers[0].gitConfiguration.push", "at most 3 push filters are allowed, found 4"),
        Issue(
            "triggers[0].gitConfiguration.pullRequest[0].branches.includes",
            "at most 8 patterns are allowed, found 9",
        ),
    ]
    fine = {"branches": {"includes": ["main"], "excludes": ["x"] * 8}, "tags": {"includes": ["v*"]}}
    assert issues_of(_with_trigger(sourceActionName="Checkout", push=[fine] * 3)) == []


def test_one_trigger_per_source_action_and_at_most_50() -> None:
    pipeline = _with_trigger(sourceActionName="Checkout")
    pipeline["triggers"] = pipeline["triggers"] * 51
    issues = issues_of(pipeline)
    assert issues[0] == Issue("triggers", "at most 50 triggers are allowed, found 51")
    assert (
        Issue(
            "triggers[1].gitConfiguration.sourceActionName",
            "source action 'Checkout' already has a trigger",
        )
        in issues
    )


def test_triggers_on_an_explicit_v1_pipeline_are_refused() -> None:
    pipeline = _with_trigger(sourceActionName="Checkout")
    pipeline["pipelineType"] = "V1"
    assert issues_of(pipeline) == [Issue("triggers", "declaring triggers requires pipelineType V2")]


def test_disabled_inbound_transitions_name_a_later_stage() -> None:
    request = {
        "pipeline": valid_pipeline(),
        "disabledInboundTransitions": [
            {"stageName": "Deploy", "reason": "hold"},
            {"stageName": "Nope", "reason": "hold"},
            {"stageName": "Source", "reason": "hold"},
        ],
    }
    assert issues_of(request) == [
        Issue("disabledInboundTransitions[1].stageName", "'Nope' names no stage of the pipeline"),
        Issue(
            "disabledInboundTransitions[2].stageName", "the first stage has no inbound transition"
        ),
    ]


def test_tags_are_limited() -> None:
    request = {
        "pipeline": valid_pipeline(),
        "tags": [{"key": "", "value": "v"}, {"key": "k", "value": "v" * 257}],
    }
    assert issues_of(request) == [
        Issue("tags[0].key", "must be 1 to 128 characters"),
        Issue("tags[1].value", "must be at most 256 characters"),
    ]


def test_a_declared_build_project_satisfies_project_name() -> None:
    pipeline = valid_pipeline()
    pipeline["stages"][2]["actions"].append(
        action(
            "Build",
            "Build",
            "AWS",
            "CodeBuild",
            inputs=("Src",),
            configuration={"ProjectName": "app"},
        )
    )
    request = {"pipeline": pipeline, "buildProjects": [{"name": "app", "buildspec": "b.yml"}]}
    assert issues_of(request) == []


def test_validate_is_pure_and_returns_issues_of_a_built_document() -> None:
    document = load_data(valid_pipeline())
    broken = document.pipeline.model_copy(update={"name": "bad name"})
    issues = validate(document.model_copy(update={"pipeline": broken}))
    assert issues == [Issue("name", r"must match [A-Za-z0-9.@\-_]+")]
