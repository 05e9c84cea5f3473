"""The CodeBuild provider end to end: input zip -> buildspec run -> output zips and variables."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from job_helpers import Harness, make_job, output

from caravan.actions.base import JobFailed, JobSucceeded
from caravan.actions.codebuild import codebuild_provider
from caravan.model.statuses import FailureType

BUILDSPEC = b"""
version: 0.2
env:
  exported-variables: [VERSION]
phases:
  build:
    commands:
      - mkdir -p dist
      - cp app.py dist/
      - echo "$CODEBUILD_INITIATOR $CODEBUILD_RESOLVED_SOURCE_VERSION" > dist/info.txt
      - export VERSION=$(cat version.txt)
artifacts:
  base-directory: dist
  files: ['**/*']
"""


async def test_buildspec_from_the_source(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    source = h.input(
        "Source", {"buildspec.yml": BUILDSPEC, "app.py": b"print(1)\n", "version.txt": b"1.2.3\n"}
    )
    source = replace(source, revision="c0ffee")
    built = output("Built")
    job = make_job("Build", "CodeBuild", inputs=[source], outputs=[built])
    result = await codebuild_provider(job, h.ctx)
    assert isinstance(result, JobSucceeded), result
    assert result.output_variables == {"VERSION": "1.2.3"}
    assert h.read(built) == {"app.py": "print(1)\n", "info.txt": "codepipeline/Pipe c0ffee\n"}
    head = h.store.head(built.bucket, built.key)
    assert head is not None and result.artifact_revisions == {"Built": head.sha256}
    assert result.external_execution_id is not None
    assert result.external_execution_id.startswith("caravan:")
    assert any(line.endswith("Running command cp app.py dist/") for line in h.log)


async def test_project_buildspec_and_variables_with_action_overrides(tmp_path: Path) -> None:
    project = {
        "name": "web",
        "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n"
        '      - echo "$A $B" > out.txt\nartifacts:\n  files: [out.txt]\n',
        "environmentVariables": [
            {"name": "A", "value": "project-a", "type": "PLAINTEXT"},
            {"name": "B", "value": "project-b"},
        ],
    }
    h = Harness(tmp_path, {"web": project})
    source = h.input("Source", {"readme": b"x"})
    built = output("Built")
    job = make_job(
        "Test",
        "CodeBuild",
        configuration={
            "ProjectName": "web",
            "EnvironmentVariables": json.dumps(
                [{"name": "B", "value": "action-b", "type": "PLAINTEXT"}]
            ),
        },
        inputs=[source],
        outputs=[built],
    )
    result = await codebuild_provider(job, h.ctx)
    assert isinstance(result, JobSucceeded), result
    assert h.read(built) == {"out.txt": "project-a action-b\n"}
    assert result.external_execution_id is not None
    assert result.external_execution_id.startswith("web:")


async def test_buildspec_setting_wins_and_secondary_artifacts_map_by_name(tmp_path: Path) -> None:
    spec = b"""
version: 0.2
phases:
  build:
    commands:
      - cat "$CODEBUILD_SRC_DIR_Lib/lib.txt" > combined.txt
      - cat app.txt >> combined.txt
artifacts:
  files: [combined.txt]
  secondary-artifacts:
    Report:
      files: [app.txt]
"""
    h = Harness(tmp_path, {"unused": {"name": "unused", "buildspec": "not: valid"}})
    lib = h.input("Lib", {"lib.txt": b"lib\n"})
    app = h.input("App", {"ci/spec.yml": spec, "app.txt": b"app\n"})
    main, report = output("Main"), output("Report")
    job = make_job(
        "Build",
        "CodeBuild",
        configuration={"ProjectName": "unused", "BuildSpec": "ci/spec.yml", "PrimarySource": "App"},
        inputs=[lib, app],
        outputs=[main, report],
    )
    result = await codebuild_provider(job, h.ctx)
    assert isinstance(result, JobSucceeded), result
    assert h.read(main) == {"combined.txt": "lib\napp\n"}
    assert h.read(report) == {"app.txt": "app\n"}


async def test_a_failed_build_names_phase_command_and_output(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    spec = (
        b"version: 0.2\nphases:\n  build:\n    commands:\n      - echo compiling\n"
        b"      - \"echo 'error: missing semicolon' >&2; sh -c 'exit 2'\"\n"
    )
    source = h.input("Source", {"buildspec.yml": spec})
    result = await codebuild_provider(make_job("Build", "CodeBuild", inputs=[source]), h.ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.JOB_FAILED
    assert result.message.startswith(
        "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, "
        "Message: Error while executing command: echo 'error: missing semicolon' >&2;"
    )
    assert "Reason: exit status 2" in result.message
    assert result.message.endswith("compiling\nerror: missing semicolon")


async def test_a_long_output_keeps_the_head_and_the_last_lines(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    spec = (
        b"version: 0.2\nphases:\n  build:\n    commands:\n"
        b"      - i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; false\n"
    )
    source = h.input("Source", {"buildspec.yml": spec})
    result = await codebuild_provider(make_job("Build", "CodeBuild", inputs=[source]), h.ctx)
    assert isinstance(result, JobFailed)
    assert len(result.message) <= 5000
    assert result.message.startswith("Build terminated with state: FAILED. Phase: BUILD")
    assert result.message.endswith("line1998\nline1999")


async def test_a_bad_buildspec_is_a_configuration_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    source = h.input("Source", {"buildspec.yml": b"version: 0.2\nphases:\n  bild: {}\n"})
    result = await codebuild_provider(make_job("Build", "CodeBuild", inputs=[source]), h.ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.CONFIGURATION_ERROR
    assert result.message.startswith("buildspec buildspec.yml phases.bild: unknown phase")


async def test_a_missing_buildspec_is_a_configuration_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    source = h.input("Source", {"app.py": b""})
    result = await codebuild_provider(make_job("Build", "CodeBuild", inputs=[source]), h.ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.CONFIGURATION_ERROR
    assert result.message == "buildspec buildspec.yml not found in input artifact Source"


async def test_an_unknown_project_lists_the_declared_ones(tmp_path: Path) -> None:
    h = Harness(tmp_path, {"api": {"name": "api"}, "web": {"name": "web"}})
    job = make_job("Build", "CodeBuild", configuration={"ProjectName": "wbe"})
    result = await codebuild_provider(job, h.ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.CONFIGURATION_ERROR
    assert result.message == (
        "configuration.ProjectName: no build project named 'wbe' is declared "
        "(declared build projects: api, web)"
    )


async def test_an_output_without_a_matching_artifact_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    spec = b"version: 0.2\nphases:\n  build:\n    commands: ['true']\nartifacts:\n  files: [a]\n"
    source = h.input("Source", {"buildspec.yml": spec, "a": b""})
    job = make_job("Build", "CodeBuild", inputs=[source], outputs=[output("One"), output("Two")])
    result = await codebuild_provider(job, h.ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.CONFIGURATION_ERROR
    assert "no secondary-artifacts identifier 'Two'" in result.message


async def test_secret_variable_types_are_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    variables = json.dumps([{"name": "TOKEN", "value": "/x", "type": "SECRETS_MANAGER"}])
    job = make_job("Build", "CodeBuild", configuration={"EnvironmentVariables": variables})
    result = await codebuild_provider(job, h.ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.CONFIGURATION_ERROR
    assert result.message.startswith(
        "configuration.EnvironmentVariables[0]: type SECRETS_MANAGER is not supported"
    )
