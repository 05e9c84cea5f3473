"""The CLI against a real `caravan server` process and the real engine: create, approve, watch,
--json shapes, and kill -9 of the server in the middle of an action."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

CARAVAN = [sys.executable, "-m", "caravan"]


class Server:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*CARAVAN, "server", "--data", str(self.data), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, f"no ready line from the server: {line!r}"
        self.url = match.group(1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CARAVAN, "--url", self.url, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_COLOR": "1"},
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    yield running
    running.stop()


def make_repo(path: Path) -> None:
    path.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (path / "README").write_text("sample\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env)


def declaration(tmp_path: Path, marker: Path) -> Path:
    repo = tmp_path / "repo"
    make_repo(repo)
    commands = {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}
    doc = {
        "pipeline": {
            "name": "e2e",
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Checkout",
                            "outputArtifacts": [{"name": "Src"}],
                            "actionTypeId": {
                                "category": "Source",
                                "owner": "Custom",
                                "provider": "Git",
                                "version": "1",
                            },
                            "configuration": {"Repository": str(repo), "Branch": "main"},
                        }
                    ],
                },
                {
                    "name": "Build",
                    "actions": [
                        {
                            "name": "Work",
                            "actionTypeId": commands,
                            "inputArtifacts": [{"name": "Src"}],
                            "commands": [
                                'echo start >> "$MARKER"',
                                "sleep 2",
                                'echo done >> "$MARKER"',
                            ],
                            "environmentVariables": [{"name": "MARKER", "value": str(marker)}],
                        }
                    ],
                },
                {
                    "name": "Release",
                    "actions": [
                        {
                            "name": "Approve",
                            "actionTypeId": {
                                "category": "Approval",
                                "owner": "AWS",
                                "provider": "Manual",
                                "version": "1",
                            },
                        }
                    ],
                },
            ],
        }
    }
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_pipeline_survives_kill_9_of_the_server_and_is_approved_from_the_cli(
    tmp_path: Path, server: Server
) -> None:
    marker = tmp_path / "marker.log"
    server.cli("pipeline", "create", str(declaration(tmp_path, marker)), check=True)
    wait_for(lambda: marker.exists() and "start" in marker.read_text(), "the Work action")
    server.kill()
    server.start()  # same data directory: the interrupted action runs again

    def waiting_for_approval() -> bool:
        state = json.loads(server.cli("status", "e2e", "--json", check=True).stdout)
        release = next(s for s in state["stageStates"] if s["stageName"] == "Release")
        latest = release["actionStates"][0].get("latestExecution", {})
        return latest.get("status") == "InProgress"

    wait_for(waiting_for_approval, "the approval")
    board = server.cli("status", "e2e", check=True).stdout
    assert "Approve" in board and "InProgress" in board
    server.cli("approve", "e2e", "Release", "Approve", "--summary", "ship it", check=True)
    watched = server.cli("watch", "e2e")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert marker.read_text().split() == ["start", "start", "done"]

    executions = json.loads(server.cli("executions", "e2e", "--json", check=True).stdout)
    [summary] = executions["pipelineExecutionSummaries"]
    assert summary["status"] == "Succeeded"
    assert summary["trigger"]["triggerType"] == "CreatePipeline"
    actions = json.loads(server.cli("actions", "e2e", "--json", check=True).stdout)
    names = [a["actionName"] for a in actions["actionExecutionDetails"]]
    assert names.count("Work") == 1  # one action execution, dispatched twice
    logs = server.cli("logs", "e2e", "--stage", "Build", "--action", "Work", check=True).stdout
    assert "restarted" in logs


def test_bad_input_gets_one_line_and_exit_code_2(tmp_path: Path, server: Server) -> None:
    missing = server.cli("status", "nope")
    assert missing.returncode == 2
    assert missing.stderr.startswith("caravan: error:") and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("pipeline: {name: x, stages: []}\n")
    result = server.cli("pipeline", "create", str(broken))
    assert result.returncode == 2 and "stages" in result.stderr
