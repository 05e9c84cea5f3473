"""The AWS CLI against a real ``caravan server``: ``aws codepipeline ...`` with dummy
credentials prints CodePipeline's JSON, and AWS's error names on failure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from codepipeline_server import CaravanServer, GitRepo

AWS = shutil.which("aws", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed in this venv")


def aws(server: CaravanServer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AWS), "--endpoint-url", server.url, "--output", "json", "codepipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_create_pipeline_and_get_pipeline_state_through_the_aws_cli(
    caravan_server: CaravanServer,
    aws_environment: dict[str, str],
    git_repo: GitRepo,
    tmp_path: Path,
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    git = {"category": "Source", "owner": "Custom", "provider": "Git", "version": "1"}
    commands = {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}
    declaration = {
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/cli",
        "pipelineType": "V2",
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "name": "Checkout",
                        "actionTypeId": git,
                        "outputArtifacts": [{"name": "Src"}],
                        "configuration": {"Repository": str(git_repo.path), "Branch": "main"},
                    }
                ],
            },
            {
                "name": "Build",
                "actions": [
                    {
                        "name": "Make",
                        "actionTypeId": commands,
                        "inputArtifacts": [{"name": "Src"}],
                        "commands": ["cat README"],
                    }
                ],
            },
        ],
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(declaration))
    created = aws(
        caravan_server, aws_environment, "create-pipeline", "--pipeline", f"file://{path}"
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["pipeline"]["version"] == 1

    def state() -> dict[str, Any]:
        done = aws(caravan_server, aws_environment, "get-pipeline-state", "--name", name)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    deadline = time.monotonic() + 30
    while (body := state())["stageStates"][1].get("latestExecution", {}).get("status") != (
        "Succeeded"
    ):
        assert time.monotonic() < deadline, f"the execution did not succeed: {body}"
        time.sleep(0.2)
    assert body["pipelineName"] == name and body["pipelineVersion"] == 1
    source, build = body["stageStates"]
    assert source["actionStates"][0]["latestExecution"]["status"] == "Succeeded"
    assert build["actionStates"][0]["actionName"] == "Make"
    assert build["inboundTransitionState"]["enabled"] is True
    # AWS CLI v1 prints the wire's epoch seconds, v2 ISO 8601 text.
    assert isinstance(body["created"], float | str) and body["created"]


def test_an_error_is_reported_by_its_aws_name(
    caravan_server: CaravanServer, aws_environment: dict[str, str]
) -> None:
    missing = aws(caravan_server, aws_environment, "get-pipeline-state", "--name", "no-such-thing")
    assert missing.returncode in (254, 255)  # AWS CLI v2, v1: a service error
    assert "(PipelineNotFoundException)" in missing.stderr
    assert "no-such-thing" in missing.stderr
