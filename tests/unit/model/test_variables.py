"""#{namespace.name} references: finding, resolving, and checking them at declaration time."""

from __future__ import annotations

from typing import Any

import pytest
from declaration_helpers import action, commands, issues_of, load_ok, valid_pipeline

from caravan.errors import Issue, VariableError
from caravan.model.variables import (
    VariableRef,
    find_references,
    known_output_variables,
    resolve_mapping,
    resolve_text,
)

VALUES = {
    "codepipeline": {"PipelineExecutionId": "e-1"},
    "SourceVariables": {"CommitId": "abc123", "BranchName": "main"},
}


def test_find_references_gives_each_reference_with_its_span() -> None:
    text = "deploy #{SourceVariables.CommitId} of #{codepipeline.PipelineExecutionId}"
    refs = find_references(text)
    assert refs == [
        VariableRef("SourceVariables", "CommitId", 7, 34),
        VariableRef("codepipeline", "PipelineExecutionId", 38, 73),
    ]
    assert text[refs[0].start : refs[0].end] == "#{SourceVariables.CommitId}"
    assert str(refs[1]) == "#{codepipeline.PipelineExecutionId}"


@pytest.mark.parametrize(
    "text", ["plain", "#{NoDot}", "#{a.b.c}", "#{a b.c}", "${a.b}", "#{.b}", "#{a.}", ""]
)
def test_text_that_is_not_a_reference_is_left_alone(text: str) -> None:
    assert find_references(text) == []
    assert resolve_text(text, {}) == text


def test_resolve_text_replaces_every_reference() -> None:
    text = (
        "#{SourceVariables.BranchName}@#{SourceVariables.CommitId}"
        " (#{codepipeline.PipelineExecutionId})"
    )
    assert resolve_text(text, VALUES) == "main@abc123 (e-1)"


def test_a_resolved_value_is_not_scanned_again() -> None:
    values = {"a": {"x": "#{a.y}"}, "b": {}}
    assert resolve_text("#{a.x}", values) == "#{a.y}"


def test_resolve_text_names_the_missing_reference() -> None:
    with pytest.raises(VariableError) as caught:
        resolve_text("v=#{SourceVariables.Tag}", VALUES)
    assert "#{SourceVariables.Tag}" in caught.value.message
    assert "BranchName, CommitId" in caught.value.message
    with pytest.raises(VariableError, match=r"#\{Build\.Out\}.*no namespace 'Build'"):
        resolve_text("#{Build.Out}", VALUES)


def test_resolve_mapping_keeps_keys_and_names_every_missing_reference() -> None:
    mapping = {"Commit": "#{SourceVariables.CommitId}", "Static": "x"}
    assert resolve_mapping(mapping, VALUES) == {"Commit": "abc123", "Static": "x"}
    with pytest.raises(VariableError) as caught:
        resolve_mapping({"A": "#{x.one}", "B": "ok", "C": "#{x.two}"}, VALUES)
    message = caught.value.message
    assert "A: #{x.one}" in message
    assert "C: #{x.two}" in message


# Declaration-time checks ----------------------------------------------------------------------


def _using(text: str, *, stage: int = 2, **pipeline_fields: Any) -> dict[str, Any]:
    """The valid pipeline with one more action whose UserParameters is ``text``."""
    pipeline = valid_pipeline()
    pipeline.update(pipeline_fields)
    pipeline["stages"][stage]["actions"].append(
        action("Use", configuration={"UserParameters": text}, runOrder=5)
    )
    return pipeline


def _path(stage: int = 2) -> str:
    return f"stages[{stage}].actions[1].configuration.UserParameters"


@pytest.mark.parametrize(
    "text",
    [
        "#{codepipeline.PipelineExecutionId}",
        "#{codepipeline.PipelineName} #{codepipeline.PipelineExecutionStartTime}",
        "#{SourceVariables.CommitId} #{SourceVariables.CommitMessage}",
        "#{PackageVariables.AnythingTheLambdaReturns}",
    ],
)
def test_resolvable_references_are_accepted(text: str) -> None:
    assert issues_of(_using(text)) == []


def test_pipeline_variables_must_be_declared() -> None:
    declared = [{"name": "Env", "defaultValue": "test"}]
    assert issues_of(_using("#{variables.Env}", variables=declared)) == []
    assert issues_of(_using("#{variables.Region}", variables=declared)) == [
        Issue(_path(), "#{variables.Region}: no pipeline variable 'Region' is declared")
    ]


def test_unknown_codepipeline_variable_is_reported() -> None:
    assert issues_of(_using("#{codepipeline.Bogus}")) == [
        Issue(
            _path(),
            "#{codepipeline.Bogus}: the codepipeline namespace has only PipelineExecutionId, "
            "PipelineExecutionStartTime, PipelineName",
        )
    ]


def test_a_namespace_nobody_declares_is_reported() -> None:
    assert issues_of(_using("#{BuildVariables.Out}")) == [
        Issue(_path(), "#{BuildVariables.Out}: no action declares namespace 'BuildVariables'")
    ]


def test_a_namespace_must_belong_to_an_action_that_runs_earlier() -> None:
    # PackageVariables is set in stage 1 at runOrder 1: same stage, same runOrder is too early.
    pipeline = valid_pipeline()
    pipeline["stages"][1]["actions"].append(
        action("Use", configuration={"UserParameters": "#{PackageVariables.Out}"})
    )
    assert issues_of(pipeline) == [
        Issue(
            "stages[1].actions[2].configuration.UserParameters",
            "#{PackageVariables.Out}: namespace 'PackageVariables' belongs to action 'Package' in "
            "stage 'Build', which does not run before this action (it must be in an earlier "
            "stage, or at a lower runOrder in this stage)",
        )
    ]
    # A higher runOrder in the same stage runs later: accepted.
    assert issues_of(_using("#{PackageVariables.Out}", stage=1)) == []


def test_a_source_action_exports_only_its_known_variables() -> None:
    assert issues_of(_using("#{SourceVariables.CommitSha}")) == [
        Issue(
            _path(),
            "#{SourceVariables.CommitSha}: action 'Checkout' in stage 'Source' does not export "
            "'CommitSha' (it exports: AuthorDate, BranchName, CommitId, CommitMessage, "
            "CommitterDate, ConnectionArn, FullRepositoryId, FullRepositoryName, ProviderType, "
            "RepositoryName)",
        )
    ]


def test_a_commands_action_exports_its_output_variables() -> None:
    pipeline = valid_pipeline()
    pipeline["stages"][1]["actions"].append(
        commands("Probe", ["export VERSION=1"], outputVariables=["VERSION"], namespace="Probe")
    )
    pipeline["stages"][2]["actions"].append(
        commands(
            "Use",
            ["echo #{Probe.VERSION}", "echo #{Probe.OTHER}"],
            environmentVariables=[{"name": "V", "value": "#{Probe.MISSING}"}],
        )
    )
    assert issues_of(pipeline) == [
        Issue(
            "stages[2].actions[1].commands[1]",
            "#{Probe.OTHER}: action 'Probe' in stage 'Build' does not export 'OTHER' "
            "(it exports: VERSION)",
        ),
        Issue(
            "stages[2].actions[1].environmentVariables[0].value",
            "#{Probe.MISSING}: action 'Probe' in stage 'Build' does not export 'MISSING' "
            "(it exports: VERSION)",
        ),
    ]


def test_known_output_variables_per_action_type() -> None:
    document = load_ok(valid_pipeline())
    source = document.pipeline.action("Source", "Checkout")
    lambda_action = document.pipeline.action("Build", "Package")
    source_names = known_output_variables(source)
    assert source_names is not None
    assert {"CommitId", "BranchName", "RepositoryName"} <= source_names
    assert known_output_variables(lambda_action) is None  # only the run can tell
