"""Running a buildspec with CodeBuild's semantics, in real shells on real files."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import pytest
from process_helpers import alive, wait_dead

from caravan.actions.build_runner import PRIMARY_ARTIFACT, BuildOutcome, run_build
from caravan.actions.buildspec import parse_buildspec


class Build:
    """One build in a fresh source directory, with its log captured."""

    def __init__(self, tmp_path: Path) -> None:
        self.src = tmp_path / "src"
        self.src.mkdir()
        self.scratch = tmp_path / "scratch"
        self.log: list[str] = []
        self.printed = asyncio.Event()  # the commands printed their first line

    @property
    def output(self) -> list[str]:
        """The commands' own lines, without CodeBuild's container lines."""
        return [line for line in self.log if not line.startswith("[Container]")]

    def _on_output(self, line: str) -> None:
        self.log.append(line)
        if not line.startswith("[Container]"):
            self.printed.set()

    async def run(self, buildspec: str, **kwargs: object) -> BuildOutcome:
        return await run_build(
            parse_buildspec(buildspec),
            workdir=self.src,
            on_output=self._on_output,
            scratch=self.scratch,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
def build(tmp_path: Path) -> Build:
    return Build(tmp_path)


async def test_cd_and_variables_persist_across_commands_and_phases(build: Build) -> None:
    (build.src / "sub").mkdir()
    outcome = await build.run(
        """
version: 0.2
phases:
  install:
    commands:
      - cd sub
      - PLAIN=kept
  pre_build:
    commands:
      - export TAG=v1
  build:
    commands:
      - echo "$(basename "$PWD") $TAG $PLAIN"
"""
    )
    assert outcome.succeeded, outcome.message
    assert build.output == ["sub v1 kept"]


async def test_codebuild_log_lines(build: Build) -> None:
    await build.run("version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n")
    stamp = r"\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} "
    assert re.fullmatch(stamp + "Entering phase BUILD", build.log[0])
    assert re.fullmatch(stamp + "Running command echo hi", build.log[1])
    assert build.log[2] == "hi"
    assert re.fullmatch(stamp + "Phase complete: BUILD State: SUCCEEDED", build.log[3])


async def test_a_failed_build_phase_still_runs_post_build(build: Build) -> None:
    outcome = await build.run(
        """
version: 0.2
phases:
  build:
    commands:
      - echo building
      - "false"
      - echo never
    finally:
      - echo finally ran
  post_build:
    commands:
      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"
"""
    )
    assert build.output == ["building", "finally ran", "succeeding=0"]
    assert not outcome.succeeded
    assert outcome.failed_phase == "BUILD"
    assert outcome.failed_command == "false"
    assert outcome.exit_code == 1
    assert outcome.message == (
        "Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, "
        "Message: Error while executing command: false. Reason: exit status 1"
    )
    assert any("Command did not exit successfully false exit status 1" in x for x in build.log)


async def test_a_successful_build_sees_succeeding_1_in_post_build(build: Build) -> None:
    outcome = await build.run(
        "version: 0.2\nphases:\n  post_build:\n"
        "    commands: ['echo succeeding=$CODEBUILD_BUILD_SUCCEEDING']\n"
    )
    assert outcome.succeeded
    assert build.output == ["succeeding=1"]


async def test_a_failed_pre_build_aborts_the_rest(build: Build) -> None:
    outcome = await build.run(
        """
version: 0.2
phases:
  pre_build:
    commands: ["sh -c 'exit 7'"]
    finally: [echo pre finally]
  build:
    commands: [echo build]
  post_build:
    commands: [echo post]
"""
    )
    assert build.output == ["pre finally"]
    assert outcome.failed_phase == "PRE_BUILD"
    assert outcome.exit_code == 7


async def test_on_failure_continue_runs_the_next_phases_but_fails_the_build(build: Build) -> None:
    outcome = await build.run(
        """
version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands: ["false", echo skipped]
  build:
    commands: [echo build ran]
"""
    )
    assert build.output == ["build ran"]
    assert not outcome.succeeded
    assert outcome.failed_phase == "INSTALL"


async def test_a_failing_finally_command_fails_its_phase(build: Build) -> None:
    outcome = await build.run(
        "version: 0.2\nphases:\n  build:\n    commands: [echo ok]\n"
        "    finally: ['false', echo not reached]\n"
    )
    assert build.output == ["ok"]
    assert outcome.failed_phase == "BUILD"
    assert outcome.failed_command == "false"


async def test_a_command_that_exits_the_shell_fails_the_build(build: Build) -> None:
    outcome = await build.run(
        "version: 0.2\nphases:\n  build:\n    commands: [exit 4, echo no]\n"
        "  post_build:\n    commands: [echo no]\n"
    )
    assert build.output == []
    assert outcome.failed_phase == "BUILD"
    assert outcome.failed_command == "exit 4"
    assert outcome.exit_code == 4


async def test_exported_variables_are_read_at_the_end(build: Build) -> None:
    outcome = await build.run(
        """
version: 0.2
env:
  variables:
    FROM_ENV: declared
  exported-variables: [FROM_ENV, EXPORTED, PLAIN, EMPTY, NEVER_SET]
phases:
  build:
    commands:
      - export EXPORTED="a b"
      - PLAIN=x
      - EMPTY=
  post_build:
    commands:
      - PLAIN="changed in post_build"
"""
    )
    assert outcome.succeeded
    assert outcome.exported_variables == {
        "FROM_ENV": "declared",
        "EXPORTED": "a b",
        "PLAIN": "changed in post_build",
        "EMPTY": "",
    }
    assert outcome.unset_exported == ("NEVER_SET",)


async def test_environment_is_scrubbed_and_carries_codebuild_variables(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARAVAN_TEST_SECRET", "leaked")
    other = tmp_path / "other"
    other.mkdir()
    outcome = await build.run(
        """
version: 0.2
env:
  variables:
    OVERRIDDEN: from buildspec
    ONLY_SPEC: spec
phases:
  build:
    commands:
      - env
""",
        env={"OVERRIDDEN": "declared"},
        secondary_sources={"Other": other},
        build_id="proj:123",
        initiator="codepipeline/Pipe",
    )
    assert outcome.succeeded
    seen = dict(line.split("=", 1) for line in build.output if "=" in line)
    assert "CARAVAN_TEST_SECRET" not in seen
    assert "leaked" not in "\n".join(build.output)
    assert seen["HOME"] == str(build.scratch / ".home") != os.environ.get("HOME")
    assert seen["OVERRIDDEN"] == "declared" and seen["ONLY_SPEC"] == "spec"
    assert seen["CODEBUILD_SRC_DIR"] == str(build.src)
    assert seen["CODEBUILD_SRC_DIR_Other"] == str(other)
    assert seen["CODEBUILD_BUILD_ID"] == "proj:123"
    assert seen["CODEBUILD_INITIATOR"] == "codepipeline/Pipe"
    assert seen["CODEBUILD_BUILD_SUCCEEDING"] == "1"


async def test_bash_shell(build: Build) -> None:
    await build.run(
        "version: 0.2\nenv: {shell: bash}\nphases:\n  build:\n"
        "    commands: ['[[ -n $BASH_VERSION ]] && echo bash']\n"
    )
    assert build.output == ["bash"]


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


async def test_artifacts_files_base_directory_discard_paths_and_secondary(build: Build) -> None:
    outcome = await build.run(
        """
version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/js dist/css docs
      - echo app > dist/js/app.js
      - echo map > dist/js/app.js.map
      - echo style > dist/css/site.css
      - echo guide > docs/guide.md
      - echo flat > docs/flat.txt
artifacts:
  base-directory: dist
  files: ['**/*']
  exclude-paths: ['**/*.map']
  secondary-artifacts:
    Docs:
      files: [docs/*.md, docs/flat.txt]
      discard-paths: yes
"""
    )
    assert outcome.succeeded, outcome.message
    assert tree(outcome.output_dirs[PRIMARY_ARTIFACT]) == {
        "js/app.js": "app\n",
        "css/site.css": "style\n",
    }
    assert tree(outcome.output_dirs["Docs"]) == {"guide.md": "guide\n", "flat.txt": "flat\n"}


async def test_a_literal_directory_selects_its_content(build: Build) -> None:
    (build.src / "out" / "deep").mkdir(parents=True)
    (build.src / "out" / "deep" / "f").write_text("x")
    outcome = await build.run(
        "version: 0.2\nphases:\n  build:\n    commands: ['true']\nartifacts:\n  files: [out]\n"
    )
    assert tree(outcome.output_dirs[PRIMARY_ARTIFACT]) == {"out/deep/f": "x"}


async def test_base_directory_may_name_a_secondary_source(build: Build, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "pkg").mkdir(parents=True)
    (other / "pkg" / "lib.txt").write_text("lib")
    outcome = await build.run(
        """
version: 0.2
phases:
  build:
    commands: ['true']
artifacts:
  files: [nothing-needed-here]
  secondary-artifacts:
    Lib:
      base-directory: $CODEBUILD_SRC_DIR_Other/pkg
      files: ['*']
""",
        secondary_sources={"Other": other},
        collect=["Lib"],
    )
    assert outcome.succeeded, outcome.message
    assert set(outcome.output_dirs) == {"Lib"}  # the primary was not asked for
    assert tree(outcome.output_dirs["Lib"]) == {"lib.txt": "lib"}


async def test_a_pattern_matching_nothing_fails_the_build(build: Build) -> None:
    outcome = await build.run(
        "version: 0.2\nphases:\n  build:\n    commands: ['true']\n"
        "artifacts:\n  files: [dist/*.zip]\n"
    )
    assert not outcome.succeeded
    assert outcome.failed_phase == "UPLOAD_ARTIFACTS"
    assert "no files matched artifacts.files pattern 'dist/*.zip'" in outcome.message
    assert "CLIENT_ERROR" in outcome.message


async def test_timeout(build: Build) -> None:
    start = time.monotonic()
    outcome = await build.run(
        "version: 0.2\nphases:\n  build:\n    commands: [echo start, sleep 30]\n", timeout=0.5
    )
    assert time.monotonic() - start < 3
    assert not outcome.succeeded
    assert outcome.failed_phase == "BUILD"
    assert outcome.timed_out
    assert outcome.message == (
        "Phase: BUILD, Code: BUILD_TIMED_OUT, Message: Build timed out after 0.5 seconds"
    )
    assert build.output == ["start"]


async def test_cancelling_a_build_kills_its_commands(build: Build) -> None:
    task = asyncio.create_task(
        build.run("version: 0.2\nphases:\n  build:\n    commands: ['sleep 60 & echo $!; wait']\n")
    )
    await asyncio.wait_for(build.printed.wait(), 5)
    pid = int(build.output[0])
    assert alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_dead([pid], 1.0) == []


async def test_a_shell_that_cannot_start_fails_the_build(build: Build) -> None:
    build.src.rmdir()
    outcome = await build.run("version: 0.2\nphases:\n  build:\n    commands: ['true']\n")
    assert not outcome.succeeded
    assert outcome.message.startswith("Phase: BUILD, Code: CLIENT_ERROR, Message: cannot start")
