"""The app manifest (caravan.yml): shapes, rules across sections, paths of every issue."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from caravan.errors import DeclarationError, InvalidInputError
from caravan.model.manifest import (
    AppManifest,
    HealthCheck,
    ManifestError,
    ReleasePolicy,
    ReleaseStrategy,
    TrafficStep,
    load_manifest,
    manifest_from_data,
)

DROMEDARY = Path(__file__).resolve().parents[3] / "examples" / "dromedary" / "caravan.yml"

BASE = """
app: shop
functions:
  api:
    handler: shop.api.handler
    artifact: Code
api: {definition: openapi.yaml, artifact: Api}
site: {artifact: Site}
pipeline:
  stages:
    - name: Source
      actions:
        - name: Source
          actionTypeId: {category: Source, owner: Custom, provider: Git, version: "1"}
          configuration: {Repository: "."}
          outputArtifacts: [{name: Src}]
    - name: Build
      actions:
        - name: Build
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
          inputArtifacts: [{name: Src}]
          outputArtifacts: [{name: Code}, {name: Api}, {name: Site}]
    - name: Test
      actions:
        - name: DeployFunction
          actionTypeId: {category: Deploy, owner: Custom, provider: CaravanFunction, version: "1"}
          configuration: {Function: api, Environment: test}
          inputArtifacts: [{name: Code}]
        - name: DeployApi
          actionTypeId: {category: Deploy, owner: Custom, provider: CaravanApi, version: "1"}
          configuration: {Environment: test}
          inputArtifacts: [{name: Api}]
        - name: DeploySite
          actionTypeId: {category: Deploy, owner: Custom, provider: CaravanSite, version: "1"}
          runOrder: 2
          configuration: {Environment: test}
          inputArtifacts: [{name: Site}]
        - name: EndToEnd
          actionTypeId: {category: Test, owner: Custom, provider: CaravanTest, version: "1"}
          runOrder: 3
          configuration: {Environment: test, Commands: '["python3 -m tests.e2e"]'}
          inputArtifacts: [{name: Src}]
"""


def base() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(BASE))


def action(data: dict[str, Any], stage: int, index: int) -> dict[str, Any]:
    result: dict[str, Any] = data["pipeline"]["stages"][stage]["actions"][index]
    return result


def issues_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ManifestError) as caught:
        manifest_from_data(data, source="caravan.yml")
    return {issue.path: issue.rule for issue in caught.value.issues}


# Valid manifests ---------------------------------------------------------------------------


def test_a_minimal_manifest_gets_test_and_prod_with_their_defaults() -> None:
    manifest = manifest_from_data(base())
    assert list(manifest.environments) == ["test", "prod"]
    prod = manifest.environments["prod"]
    assert prod.hosts == ["prod.shop.localhost"]
    assert prod.stage_variables == {"alias": "prod"}
    assert prod.release.strategy is ReleaseStrategy.ALL_AT_ONCE
    assert manifest.pipeline.pipeline.name == "shop"  # the pipeline is named after the app
    function = manifest.functions["api"]
    assert (function.runtime, function.memory_size, function.timeout) == ("python3.11", 128, 3)


def test_names_on_the_platform_derive_from_the_app() -> None:
    manifest = manifest_from_data(base())
    assert manifest.function_name("api") == "shop-api"
    assert manifest.api_name == "shop"
    assert manifest.site_name("test") == "shop-test"


def test_asking_for_an_undeclared_environment_names_the_declared_ones() -> None:
    with pytest.raises(
        InvalidInputError, match=r"no environment 'qa' \(environments: test, prod\)"
    ):
        manifest_from_data(base()).environment("qa")


def test_declared_environments_replace_the_defaults_and_keep_their_own_variables() -> None:
    data = base()
    data["environments"] = {
        "test": {"stageVariables": {"table": "t1", "retries": 3}, "data": {"x": [1]}}
    }
    manifest = manifest_from_data(data)
    assert list(manifest.environments) == ["test"]
    test = manifest.environments["test"]
    assert test.stage_variables == {"alias": "test", "table": "t1", "retries": "3"}
    assert test.data == {"x": [1]}


def test_environment_values_become_strings_and_placeholders_resolve() -> None:
    data = base()
    data["functions"]["api"]["environment"] = {"DEBUG": True, "COUNT": 2, "DIR": "${dataDir}/votes"}
    function = manifest_from_data(data).functions["api"]
    assert function.environment == {"DEBUG": "true", "COUNT": "2", "DIR": "${dataDir}/votes"}
    resolved = function.resolved_environment(data_dir="/srv/caravan/apps/shop")
    assert resolved["DIR"] == "/srv/caravan/apps/shop/votes"


def test_hosts_are_lower_cased_dns_names() -> None:
    data = base()
    data["environments"] = {"test": {"hosts": ["Test.Shop.LOCALHOST", "shop.example.com."]}}
    hosts = manifest_from_data(data).environments["test"].hosts
    assert hosts == ["test.shop.localhost", "shop.example.com"]


def test_the_dromedary_manifest_loads_and_its_pipeline_validates() -> None:
    manifest = load_manifest(DROMEDARY)
    assert isinstance(manifest, AppManifest)
    assert manifest.app == "dromedary"
    assert manifest.function_name("api") == "dromedary-api"
    stages = [stage.name for stage in manifest.pipeline.pipeline.stages]
    assert stages == ["Source", "Commit", "Acceptance", "Production"]
    commit = manifest.pipeline.pipeline.stage("Commit")
    assert [o.name for o in commit.actions[1].output_artifacts] == [
        "FunctionZip",
        "SiteZip",
        "ApiDefinition",
    ]
    prod = manifest.environments["prod"].release
    assert prod.strategy is ReleaseStrategy.CANARY
    assert prod.health_check == HealthCheck(max_latency_p99_ms=500, min_requests=20)
    smoke = manifest.pipeline.pipeline.action("Production", "EndToEnd").configuration
    assert "E2E_MODE=smoke" in smoke["Commands"]


def test_a_manifest_loads_from_text_and_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "caravan.yml"
    path.write_text(BASE)
    assert load_manifest(BASE).app == "shop"
    assert load_manifest(path).source == str(path)
    assert load_manifest(str(path)).app == "shop"


def test_pipeline_keys_may_be_pascal_case_and_build_projects_sit_beside_it() -> None:
    data = base()
    build = action(data, 1, 0)
    build["configuration"] = {"ProjectName": "shop-build"}
    data["pipeline"] = {"Stages": data["pipeline"]["stages"]}
    data["buildProjects"] = [{"name": "shop-build", "buildspec": "buildspec.yml"}]
    manifest = manifest_from_data(data)
    assert manifest.pipeline.build_projects["shop-build"].buildspec == "buildspec.yml"


# Release policies --------------------------------------------------------------------------


def test_canary_sends_its_percent_for_one_interval_then_everything() -> None:
    policy = ReleasePolicy(strategy=ReleaseStrategy.CANARY, percent=20, interval=5)
    assert policy.steps() == (TrafficStep(20, 5), TrafficStep(100, 0))


def test_linear_adds_its_percent_every_interval() -> None:
    policy = ReleasePolicy(strategy=ReleaseStrategy.LINEAR, percent=30, interval=2)
    assert [s.percent for s in policy.steps()] == [30, 60, 90, 100]
    assert [s.wait_seconds for s in policy.steps()] == [2, 2, 2, 0]


def test_all_at_once_moves_everything_and_watches_for_its_bake_time() -> None:
    assert ReleasePolicy().steps() == (TrafficStep(100, 0),)
    baked = ReleasePolicy(strategy=ReleaseStrategy.BLUE_GREEN, interval=10)
    assert baked.steps() == (TrafficStep(100, 10),)


def test_gradual_strategies_have_defaults_and_hooks_accept_one_command() -> None:
    data = base()
    data["environments"] = {
        "test": {},
        "prod": {
            "release": {"strategy": "Linear", "hooks": {"postTraffic": "curl -f $TARGET_URL"}}
        },
    }
    release = manifest_from_data(data).environments["prod"].release
    assert release.steps()[0] == TrafficStep(10, 30)
    assert release.hooks.post_traffic == ["curl -f $TARGET_URL"]
    assert release.hooks.pre_traffic is None


# One rule at a time, each at its path ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "rule"),
    [
        (lambda d: d.update(app="Shop_1"), "app", "must match"),
        (lambda d: d.update(app="x" * 41), "app", "must match"),
        (lambda d: d.update(extra=1), "extra", "unknown top-level key"),
        (lambda d: d.pop("functions"), "functions", "is required"),
        (lambda d: d.update(functions={}), "functions", "at least one entry"),
        (
            lambda d: d["functions"].update(API={"handler": "a.b", "artifact": "Code"}),
            "functions.API",
            "the name must match",
        ),
        (
            lambda d: d["functions"]["api"].update(handler="handler"),
            "functions.api.handler",
            "must match",
        ),
        (
            lambda d: d["functions"]["api"].update(runtime="nodejs4.3"),
            "functions.api.runtime",
            "must be 'python3.9'",
        ),
        (
            lambda d: d["functions"]["api"].update(memorySize=64),
            "functions.api.memorySize",
            "at least 128",
        ),
        (
            lambda d: d["functions"]["api"].update(timeout=901),
            "functions.api.timeout",
            "at most 900",
        ),
        (
            lambda d: d["functions"]["api"].update(memory="1G"),
            "functions.api.memory",
            "unknown field",
        ),
        (
            lambda d: d["functions"]["api"].update(environment={"AWS_REGION": "x"}),
            "functions.api.environment",
            "AWS_REGION is reserved",
        ),
        (
            lambda d: d["functions"]["api"].update(environment={"HOME_DIR": "${home}"}),
            "functions.api.environment",
            "unknown placeholder ${home}",
        ),
        (
            lambda d: d["functions"]["api"].update(path="../code"),
            "functions.api.path",
            "relative path",
        ),
        (
            lambda d: d["functions"]["api"].update(artifact="Zip"),
            "functions.api.artifact",
            "'Zip' is not an output artifact",
        ),
        (
            lambda d: d["api"].update(definition="/etc/openapi.yaml"),
            "api.definition",
            "relative path",
        ),
        (
            lambda d: d["site"].update(artifact="Www"),
            "site.artifact",
            "'Www' is not an output artifact",
        ),
        (lambda d: d.update(environments={}), "environments", "at least one entry"),
        (lambda d: d.update(environments={"Prod": {}}), "environments.Prod", "must match"),
        (
            lambda d: d.update(environments={"test": {"hosts": ["test.shop.localhost:8080"]}}),
            "environments.test.hosts",
            "not a valid DNS host name",
        ),
        (
            lambda d: d.update(
                environments={"test": {}, "prod": {"hosts": ["test.shop.localhost"]}}
            ),
            "environments.prod.hosts[0]",
            "also a host of 'test'",
        ),
        (
            lambda d: d.update(environments={"test": {"stageVariables": {"alias": "live"}}}),
            "environments.test.stageVariables.alias",
            "must be 'test'",
        ),
        (
            lambda d: d.update(environments={"test": {"stageVariables": {"a b": "x"}}}),
            "environments.test.stageVariables",
            "variable name 'a b'",
        ),
        (
            lambda d: d.update(
                environments={"test": {"release": {"strategy": "Canary", "percent": 0}}}
            ),
            "environments.test.release.percent",
            "at least 1",
        ),
        (
            lambda d: d.update(environments={"test": {"release": {"percent": 100}}}),
            "environments.test.release.percent",
            "at most 99",
        ),
        (
            lambda d: d.update(environments={"test": {"release": {"percent": 50}}}),
            "environments.test.release.percent",
            "only to the Canary and Linear",
        ),
        (
            lambda d: d.update(environments={"test": {"release": {"interval": 0}}}),
            "environments.test.release.interval",
            "at least 1",
        ),
        (
            lambda d: d.update(environments={"test": {"release": {"strategy": "Rolling"}}}),
            "environments.test.release.strategy",
            "must be 'AllAtOnce'",
        ),
        (
            lambda d: d.update(
                environments={"test": {"release": {"healthCheck": {"maxErrorRate": 1.5}}}}
            ),
            "environments.test.release.healthCheck.maxErrorRate",
            "at most 1",
        ),
        (
            lambda d: d.update(
                environments={"test": {"release": {"healthCheck": {"noTraffic": "skip"}}}}
            ),
            "environments.test.release.healthCheck.noTraffic",
            "must be 'pass', 'fail' or 'wait'",
        ),
    ],
)
def test_each_rule_is_reported_at_its_path(change: Any, path: str, rule: str) -> None:
    data = base()
    change(data)
    issues = issues_of(data)
    assert path in issues, issues
    assert rule in issues[path]


def test_pipeline_issues_carry_the_pipeline_prefix() -> None:
    data = base()
    action(data, 2, 0)["runOrder"] = 0
    data["pipeline"]["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Nothing"}]
    issues = issues_of(data)
    assert "must be between 1 and 999" in issues["pipeline.stages[2].actions[0].runOrder"]
    assert "not produced" in issues["pipeline.stages[1].actions[0].inputArtifacts[0].name"]


def test_build_project_issues_keep_their_own_path() -> None:
    data = base()
    data["buildProjects"] = [{"name": "bad name!"}]
    assert "buildProjects[0].name" in issues_of(data)


@pytest.mark.parametrize(
    ("stage", "index", "change", "path", "rule"),
    [
        (
            2,
            0,
            {"configuration": {"Function": "web", "Environment": "test"}},
            "configuration.Function",
            "'web' is not declared",
        ),
        (
            2,
            0,
            {"configuration": {"Function": "api", "Environment": "qa"}},
            "configuration.Environment",
            "'qa' is not declared (declared: prod, test)",
        ),
        (2, 0, {"configuration": {"Environment": "test"}}, "configuration.Function", "is required"),
        (2, 0, {"inputArtifacts": [{"name": "Src"}]}, "inputArtifacts[0].name", "must be 'Code'"),
        (2, 1, {"inputArtifacts": []}, "inputArtifacts", "exactly one input artifact"),
        (
            2,
            2,
            {"configuration": {"Environment": "test", "Bucket": "x"}},
            "configuration.Bucket",
            "unknown key (expected Environment, Version)",
        ),
        (
            2,
            1,
            {
                "actionTypeId": {
                    "category": "Build",
                    "owner": "Custom",
                    "provider": "CaravanApi",
                    "version": "1",
                }
            },
            "actionTypeId",
            "Deploy/Custom/CaravanApi/1",
        ),
        (
            2,
            3,
            {"configuration": {"Environment": "test", "Commands": "pytest"}},
            "configuration.Commands",
            "JSON list of command strings",
        ),
        (
            2,
            3,
            {"configuration": {"Environment": "test"}},
            "configuration",
            "exactly one of Commands and BuildSpec",
        ),
    ],
)
def test_caravan_actions_must_name_what_the_manifest_declares(
    stage: int, index: int, change: dict[str, Any], path: str, rule: str
) -> None:
    data = base()
    action(data, stage, index).update(change)
    issues = issues_of(data)
    full = f"pipeline.stages[{stage}].actions[{index}].{path}"
    assert full in issues, issues
    assert rule in issues[full]


def test_deploying_a_part_the_manifest_does_not_declare_is_an_issue() -> None:
    data = base()
    del data["site"]
    issues = issues_of(data)
    assert "declares no site" in issues["pipeline.stages[2].actions[2].actionTypeId"]


def test_every_problem_is_reported_at_once() -> None:
    data = base()
    data["app"] = "Bad App"
    data["functions"]["api"]["memorySize"] = 1
    data["functions"]["web"] = {"handler": "web.handler", "artifact": "Missing"}
    data["environments"] = {"test": {"release": {"percent": 5}}, "prod": {"hosts": ["a b"]}}
    action(data, 2, 0)["configuration"] = {"Function": "api", "Environment": "staging"}
    issues = issues_of(data)
    assert set(issues) == {
        "app",
        "functions.api.memorySize",
        "functions.web.artifact",
        "environments.test.release.percent",
        "environments.prod.hosts",
        "pipeline.stages[2].actions[0].configuration.Environment",
    }


def test_a_broken_entry_does_not_hide_rules_about_the_others() -> None:
    data = base()
    data["functions"]["api"]["timeout"] = 0  # api is broken, but still a declared name...
    data["functions"]["api"]["artifact"] = "Zip"  # ...whose artifact is still checked
    issues = issues_of(data)
    assert set(issues) == {"functions.api.timeout", "functions.api.artifact"}


# Errors a user sees --------------------------------------------------------------------------


def test_the_error_names_the_file_and_lists_each_issue() -> None:
    data = base()
    data["app"] = "Bad App"
    with pytest.raises(ManifestError) as caught:
        manifest_from_data(data, source="caravan.yml")
    error = caught.value
    assert isinstance(error, DeclarationError)
    assert error.exit_code == 2
    assert error.message.startswith("app manifest in caravan.yml has 1 problem:")
    assert error.to_dict()["reference"] == "invalid-manifest"
    assert error.to_dict()["issues"] == [{"path": "app", "rule": error.issues[0].rule}]


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest("app: shop\nfunctions: [\n", source="caravan.yml")
    assert caught.value.issues[0].path.startswith("line ")


def test_a_manifest_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ManifestError, match="must be a mapping"):
        load_manifest("- app\n- shop\n")


def test_a_missing_file_is_invalid_input_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read app manifest"):
        load_manifest(tmp_path / "caravan.yml")
