"""Declaration files: `pipeline create|update FILE` against the server, and `run FILE`
in-process (the engine is the fake, installed as caravan.engine.runtime)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_engine import FakeEngine

from caravan.cli.main import cli

Caravan = Callable[..., Result]

DECLARATION = """\
pipeline:
  name: shop
  roleArn: arn:aws:iam::000000000000:role/caravan
  artifactStore: {type: S3, location: caravan-artifacts}
  pipelineType: V2
  variables:
    - {name: env, defaultValue: dev}
  stages:
    - name: Source
      actions:
        - name: Checkout
          actionTypeId: {category: Source, owner: AWS, provider: CodeCommit, version: "1"}
          configuration: {RepositoryName: shop, BranchName: main}
          outputArtifacts: [{name: SourceOutput}]
    - name: Build
      actions:
        - name: Compile
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
          configuration: {ProjectName: compile}
          inputArtifacts: [{name: SourceOutput}]
buildProjects:
  - name: compile
    buildspec: "version: 0.2"
"""

BROKEN = """\
pipeline:
  name: shop
  roleArn: arn:aws:iam::000000000000:role/caravan
  stages:
    - name: Only
      actions:
        - name: A
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
          runOrder: 0
"""


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yml"
    path.write_text(DECLARATION)
    return path


def requests_of(engine: FakeEngine, operation: str) -> list[dict[str, Any]]:
    return [request for name, request in engine.calls if name == operation]


def test_pipeline_create_sends_the_declaration_with_caravan_extensions(
    caravan: Caravan, engine: FakeEngine, pipeline_file: Path
) -> None:
    result = caravan("pipeline", "create", str(pipeline_file))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "created pipeline shop (version 1)",
        "its first execution has started; follow it with: caravan watch shop",
    ]
    [request] = requests_of(engine, "CreatePipeline")
    assert request["pipeline"]["name"] == "shop"
    assert [s["name"] for s in request["pipeline"]["stages"]] == ["Source", "Build"]
    assert request["buildProjects"][0]["name"] == "compile"
    assert request["declarationDir"] == str(pipeline_file.parent.resolve())


def test_pipeline_update_makes_a_new_version(
    caravan: Caravan, engine: FakeEngine, pipeline_file: Path
) -> None:
    assert caravan("pipeline", "create", str(pipeline_file)).exit_code == 0
    result = caravan("pipeline", "update", str(pipeline_file))
    assert result.exit_code == 0
    assert result.output == "updated pipeline shop to version 2\n"


def test_broken_declaration_lists_every_issue_and_sends_nothing(
    caravan: Caravan, engine: FakeEngine, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    result = caravan("pipeline", "create", str(broken))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"caravan: error: pipeline declaration in {broken} has ")
    issues = lines[1:]
    assert len(issues) >= 2  # every problem, one per line
    assert any("stages" in issue for issue in issues)
    assert any("runOrder" in issue for issue in issues)
    assert "Traceback" not in result.output
    assert engine.calls == []


def test_missing_file_is_a_usage_error(caravan: Caravan, tmp_path: Path) -> None:
    result = caravan("pipeline", "create", str(tmp_path / "nope.yml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# caravan run -----------------------------------------------------------------------------
class Runtime:
    """A stand-in for caravan.engine.runtime: hands out one fake engine, records data dirs."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.data_dirs: list[Path] = []

    @asynccontextmanager
    async def open_engine(self, *, data_dir: Path, **_: Any) -> AsyncIterator[FakeEngine]:
        self.data_dirs.append(data_dir)
        assert data_dir.is_dir()
        yield self.engine


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    fake = Runtime(FakeEngine())
    module = types.ModuleType("caravan.engine.runtime")
    module.open_engine = fake.open_engine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "caravan.engine.runtime", module)
    return fake


def runs_to(status: str) -> Callable[[FakeEngine], Any]:
    """The fake's stand-in for running the newest execution of `shop` to ``status``."""

    async def script(engine: FakeEngine) -> None:
        await asyncio.sleep(0.02)
        execution = engine.executions["shop"][0]["pipelineExecutionId"]
        engine.add_action("shop", execution, "Source", "Checkout", log="cloned\n")
        error = "exit status 2" if status == "Failed" else None
        log = "".join(f"line {i}\n" for i in range(100))
        engine.add_action(
            "shop", execution, "Build", "Compile", status=status, error=error, log=log
        )
        engine.set_status("shop", execution, status)
        event = {"type": "execution", "pipeline": "shop", "pipelineExecutionId": execution}
        engine.publish({**event, "status": status})

    return script


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args], env={"COLUMNS": "120", "CARAVAN_DEBUG": "1"})


def test_run_creates_the_pipeline_and_exits_0_when_it_succeeds(
    runtime: Runtime, pipeline_file: Path
) -> None:
    runtime.engine.on_subscribe = runs_to("Succeeded")
    result = run(str(pipeline_file))
    assert result.exit_code == 0, result.output
    execution = runtime.engine.executions["shop"][0]["pipelineExecutionId"]
    assert result.output.rstrip().endswith(f"execution {execution} Succeeded")
    assert [name for name, _ in runtime.engine.calls][:2] == ["GetPipeline", "CreatePipeline"]
    [data_dir] = runtime.data_dirs
    assert not data_dir.exists()  # the temporary data directory is gone


def test_run_failure_prints_the_log_tail_and_exits_1(runtime: Runtime, pipeline_file: Path) -> None:
    runtime.engine.on_subscribe = runs_to("Failed")
    result = run(str(pipeline_file))
    assert result.exit_code == 1
    out = result.output
    assert "Build/Compile failed" in out
    assert "exit status 2" in out
    assert "line 99" in out
    assert "line 59\n" not in out  # only the tail
    assert "cloned" not in out  # succeeded actions' logs stay out of the way


def test_run_again_in_a_data_dir_updates_and_starts_with_variables(
    runtime: Runtime, pipeline_file: Path, tmp_path: Path
) -> None:
    runtime.engine.on_subscribe = runs_to("Succeeded")
    data = tmp_path / "data"
    assert run(str(pipeline_file), "--data", str(data)).exit_code == 0
    result = run(str(pipeline_file), "--data", str(data), "--var", "env=prod")
    assert result.exit_code == 0, result.output
    names = [name for name, _ in runtime.engine.calls]
    assert "UpdatePipeline" in names
    assert requests_of(runtime.engine, "StartPipelineExecution") == [
        {"name": "shop", "variables": [{"name": "env", "value": "prod"}]}
    ]
    assert runtime.data_dirs == [data, data]
    assert data.is_dir()  # a given data directory is kept


def test_run_variables_of_a_new_pipeline_travel_as_defaults(
    runtime: Runtime, pipeline_file: Path
) -> None:
    runtime.engine.on_subscribe = runs_to("Succeeded")
    assert run(str(pipeline_file), "--var", "env=prod").exit_code == 0
    [request] = requests_of(runtime.engine, "CreatePipeline")
    assert request["pipeline"]["variables"] == [{"name": "env", "defaultValue": "prod"}]
    runtime.engine = FakeEngine()  # a new pipeline again
    unknown = run(str(pipeline_file), "--var", "color=red")
    assert unknown.exit_code == 2
    assert "declares no variable color" in unknown.stderr


def test_run_of_a_broken_file_never_opens_the_engine(runtime: Runtime, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    result = run(str(broken))
    assert result.exit_code == 2
    assert "pipeline declaration in" in result.stderr
    assert runtime.data_dirs == []


def test_an_app_manifest_gives_its_pipeline_to_create_and_run() -> None:
    from pathlib import Path

    from caravan.cli.commands.pipeline import declaration_request

    manifest = Path(__file__).parents[3] / "examples" / "dromedary" / "caravan.yml"
    request = declaration_request(manifest)
    assert request["pipeline"]["name"] == "dromedary"
    assert [s["name"] for s in request["pipeline"]["stages"]] == [
        "Source",
        "Commit",
        "Acceptance",
        "Production",
    ]
    assert request["declarationDir"] == str(manifest.parent)
