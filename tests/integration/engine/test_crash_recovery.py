"""kill -9 the engine in the middle of an action: after a restart the execution finishes, the
action that had completed does not run again, and the interrupted one runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from caravan.engine.leftovers import processes_in

DRIVER = Path(__file__).with_name("crash_driver.py")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def commands_action(name: str, run_order: int, commands: list[str], marker: Path) -> dict:
    return {
        "name": name,
        "runOrder": run_order,
        "actionTypeId": {
            "category": "Compute",
            "owner": "AWS",
            "provider": "Commands",
            "version": "1",
        },
        "commands": commands,
        "environmentVariables": [{"name": "MARKER", "value": str(marker)}],
        "inputArtifacts": [{"name": "Src"}],
    }


def make_repo(path: Path) -> None:
    path.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (path / "app.txt").write_text("hello\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env)


def test_an_execution_survives_kill_9_without_rerunning_completed_actions(tmp_path: Path) -> None:
    repo, data, marker = tmp_path / "repo", tmp_path / "data", tmp_path / "marker.log"
    make_repo(repo)
    declaration = {
        "pipeline": {
            "name": "crashy",
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Checkout",
                            "actionTypeId": {
                                "category": "Source",
                                "owner": "Custom",
                                "provider": "Git",
                                "version": "1",
                            },
                            "configuration": {"Repository": str(repo), "Branch": "main"},
                            "outputArtifacts": [{"name": "Src"}],
                        }
                    ],
                },
                {
                    "name": "Build",
                    "actions": [
                        commands_action("Fast", 1, ['echo fast >> "$MARKER"'], marker),
                        commands_action(
                            "Slow",
                            2,
                            [
                                'echo slow-start >> "$MARKER"',
                                "sleep 3",
                                'echo slow-done >> "$MARKER"',
                            ],
                            marker,
                        ),
                    ],
                },
            ],
        }
    }
    decl_file = tmp_path / "pipeline.json"
    decl_file.write_text(json.dumps(declaration))
    driver = subprocess.Popen(
        [sys.executable, str(DRIVER), str(data), str(decl_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while "slow-start" not in (marker.read_text() if marker.exists() else ""):
        assert driver.poll() is None, driver.stdout.read() if driver.stdout else ""
        assert time.monotonic() < deadline, "the Slow action never started"
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert driver.stdout is not None
    driver.stdout.close()
    time.sleep(0.5)
    # The interrupted command's shell died with the engine; what it started (the sleep) was
    # orphaned and would run on: the restart must stop it before running the action again.
    assert "slow-done" not in marker.read_text()
    orphans = list(processes_in(data / "work"))
    assert orphans, "expected the interrupted command's sleep to be still running"

    again = subprocess.run(
        [sys.executable, str(DRIVER), str(data), str(decl_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("Succeeded")
    assert all(not _running(pid) for pid in orphans)
    lines = marker.read_text().split()
    assert lines.count("fast") == 1  # completed before the kill: never runs again
    assert lines.count("slow-start") == 2 and lines.count("slow-done") == 1
