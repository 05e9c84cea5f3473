"""The Commands provider end to end: commands in one shell, file globs, output variables."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from job_helpers import Harness, make_job, output
from process_helpers import alive, wait_dead

from caravan.actions.base import JobFailed, JobSucceeded
from caravan.actions.commands import commands_provider
from caravan.model.statuses import FailureType


async def test_commands_produce_artifacts_and_variables(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    source = h.input("Source", {"src/main.txt": b"main\n", "README": b"readme\n"})
    site, everything = output("Site", ["dist/**/*"]), output("All")
    job = make_job(
        "Compute",
        "Commands",
        commands=[
            "mkdir -p dist/assets",
            "cd dist",
            'echo "$GREETING" > assets/hello.txt',
            "cp ../src/main.txt .",
            "COMMIT=abc123",
            "export STAGE=beta",
        ],
        environment_variables={"GREETING": "hello"},
        output_variables=["COMMIT", "STAGE", "MISSING"],
        inputs=[source],
        outputs=[site, everything],
    )
    result = await commands_provider(job, h.ctx)
    assert isinstance(result, JobSucceeded), result
    assert result.output_variables == {"COMMIT": "abc123", "STAGE": "beta"}
    assert any("MISSING was never set" in line for line in h.log)
    assert h.read(site) == {"dist/assets/hello.txt": "hello\n", "dist/main.txt": "main\n"}
    assert set(h.read(everything)) == {
        "README",
        "src/main.txt",
        "dist/assets/hello.txt",
        "dist/main.txt",
    }
    assert set(result.artifact_revisions) == {"Site", "All"}
    assert result.summary == "6 commands succeeded"


async def test_a_rerun_in_the_same_workdir_starts_clean(tmp_path: Path) -> None:
    """After an engine restart the action runs again in its old working directory."""
    h = Harness(tmp_path)
    source = h.input("Source", {"a.txt": b"a"})
    out = output("Out", ["**/*"])
    job = make_job(
        "Compute", "Commands", commands=["echo x >> a.txt"], inputs=[source], outputs=[out]
    )
    for _ in range(2):
        result = await commands_provider(job, h.ctx)
        assert isinstance(result, JobSucceeded), result
    assert h.read(out) == {"a.txt": "ax\n"}


async def test_a_failing_command_fails_the_action_naming_it(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    job = make_job("Compute", "Commands", commands=["echo testing", "test 1 -eq 2", "echo never"])
    result = await commands_provider(job, h.ctx)
    assert isinstance(result, JobFailed)
    assert "Error while executing command: test 1 -eq 2. Reason: exit status 1" in result.message
    assert result.message.endswith("Last lines of output:\ntesting")
    assert not any(line == "never" for line in h.log)


async def test_a_glob_matching_nothing_fails_the_action(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    job = make_job(
        "Compute", "Commands", commands=["true"], outputs=[output("Out", ["build/*.zip"])]
    )
    result = await commands_provider(job, h.ctx)
    assert isinstance(result, JobFailed)
    assert "no files matched outputArtifacts[0].files pattern 'build/*.zip'" in result.message


@pytest.mark.parametrize(
    ("commands", "variables", "expected"),
    [
        ((), (), "commands: a Commands action needs at least one command"),
        (("true",), ("not-a-name",), "outputVariables[0]: 'not-a-name' is not a shell variable"),
    ],
)
async def test_bad_declarations_are_configuration_errors(
    tmp_path: Path, commands: tuple[str, ...], variables: tuple[str, ...], expected: str
) -> None:
    job = make_job("Compute", "Commands", commands=commands, output_variables=variables)
    result = await commands_provider(job, Harness(tmp_path).ctx)
    assert isinstance(result, JobFailed)
    assert result.type is FailureType.CONFIGURATION_ERROR
    assert result.message.startswith(expected)


async def test_abandoning_the_action_kills_its_processes(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    started = asyncio.Event()
    pids: list[int] = []

    def log(line: str) -> None:
        if line.isdigit():
            pids.append(int(line))
            started.set()

    h.ctx.log = log
    job = make_job("Compute", "Commands", commands=["sh -c 'sleep 60 & echo $!; wait'"])
    task = asyncio.create_task(commands_provider(job, h.ctx))
    await asyncio.wait_for(started.wait(), 5)
    assert alive(pids[0])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_dead(pids, 3.0) == []
