"""The dashboard in real Chromium against a real `caravan server`: a release waits for approval,
is approved from the page and turns green live (no reload), a transition is disabled and enabled
again, a new execution is started from the page, and a running action's log is followed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

COMMANDS = {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}
MANUAL = {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
GIT = {"category": "Source", "owner": "Custom", "provider": "Git", "version": "1"}


def make_repository(path: Path) -> None:
    path.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (path / "app.py").write_text("print('hello')\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "Say hello"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env)


def release_pipeline(repository: Path) -> dict[str, Any]:
    return {
        "pipeline": {
            "name": "shop",
            "roleArn": "arn:aws:iam::000000000000:role/caravan",
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Checkout",
                            "actionTypeId": GIT,
                            "outputArtifacts": [{"name": "Src"}],
                            "configuration": {"Repository": str(repository), "Branch": "main"},
                        }
                    ],
                },
                {
                    "name": "Build",
                    "actions": [
                        {
                            "name": "Test",
                            "actionTypeId": COMMANDS,
                            "inputArtifacts": [{"name": "Src"}],
                            "commands": ["echo building", "sleep 1.5", "echo tests passed"],
                        }
                    ],
                },
                {
                    "name": "Release",
                    "actions": [
                        {
                            "name": "Approve",
                            "runOrder": 1,
                            "actionTypeId": MANUAL,
                            "configuration": {"CustomData": "Check the build, then ship"},
                        },
                        {
                            "name": "Deploy",
                            "runOrder": 2,
                            "actionTypeId": COMMANDS,
                            "inputArtifacts": [{"name": "Src"}],
                            "commands": ["echo deploying", "python3 app.py"],
                        },
                    ],
                },
            ],
        }
    }


def test_release_approve_transition_start_and_follow_a_log(
    tmp_path: Path, server: Any, page: Any, screenshot: Any
) -> None:
    make_repository(tmp_path / "repo")
    server.call("CreatePipeline", release_pipeline(tmp_path / "repo"))

    page.goto(f"{server.url}/")
    page.wait_for_selector('tr[data-pipeline="shop"]')
    screenshot("pipelines")

    # The board: the approval arrives while the page is open (live), with its buttons.
    page.goto(f"{server.url}/pipelines/shop")
    approve = page.locator('[data-stage="Release"] [data-role="approve"]')
    approve.wait_for(state="visible")
    assert page.locator('[data-stage="Build"]').get_attribute("data-status") == "Succeeded"
    page.fill('[data-stage="Release"] textarea[name="summary"]', "Build looks good, ship it")
    screenshot("pipeline", docs="pipeline-view")

    # Approve: no reload, the stage turns green through the live stream.
    page.evaluate("window.__sameDocument = true")
    approve.click()
    page.wait_for_selector('#notice:has-text("Approved Release/Approve")')
    page.wait_for_selector('section[data-stage="Release"][data-status="Succeeded"]')
    assert page.evaluate("window.__sameDocument") is True
    deploy = page.locator('[data-stage="Release"] [data-action="Deploy"]')
    assert deploy.get_attribute("data-status") == "Succeeded"
    screenshot("pipeline-succeeded")

    # Disable the transition into Build (with a reason), then enable it again.
    build_transition = page.locator('[data-transition="Build"]')
    build_transition.locator("summary").click()
    build_transition.locator('input[name="reason"]').fill("release freeze")
    build_transition.locator('[data-role="disable"]').click()
    page.wait_for_selector('[data-transition="Build"][data-enabled="false"]')
    assert "release freeze" in page.locator('[data-transition="Build"] .reason').inner_text()
    screenshot("pipeline-transition-disabled")
    page.locator('[data-transition="Build"] [data-role="enable"]').click()
    page.wait_for_selector('[data-transition="Build"][data-enabled="true"]')

    # Start a new execution from the page: it appears in the history and runs.
    page.locator('[data-role="start"]').click()
    page.wait_for_selector('#notice:has-text("Started execution")')
    page.wait_for_function("document.querySelectorAll('#history tr[data-execution]').length == 2")
    assert page.evaluate("window.__sameDocument") is True

    # Follow the new execution's build log while it runs, until the action ends.
    running = page.locator('[data-stage="Build"] [data-action="Test"][data-status="InProgress"]')
    running.wait_for()
    page.goto(server.url + running.locator("a.log-link").get_attribute("href"))
    page.wait_for_selector("#log-follow:visible")
    page.wait_for_selector('#log:has-text("tests passed")')
    page.wait_for_selector("#log-ended:visible")
    page.wait_for_selector('#log-status [data-status="Succeeded"]')
    assert "building" in page.locator("#log").inner_text()
    screenshot("action-log")

    # The other pages draw too.
    page.goto(f"{server.url}/pipelines/shop/executions")
    page.wait_for_selector("#history tr[data-execution]")
    screenshot("executions")
    first = page.locator("#history tr[data-execution]").last.get_attribute("data-execution")
    page.goto(f"{server.url}/pipelines/shop/executions/{first}")
    page.wait_for_selector('#execution [data-status="Succeeded"]')
    assert "Say hello" in page.locator("#execution").inner_text()  # the commit message
    screenshot("execution")
    page.goto(f"{server.url}/environments")
    page.wait_for_selector("#environments")
    screenshot("environments")


def test_a_page_keeps_working_across_a_server_restart(
    tmp_path: Path, server: Any, page: Any
) -> None:
    make_repository(tmp_path / "repo")
    server.call("CreatePipeline", release_pipeline(tmp_path / "repo"))
    page.goto(f"{server.url}/pipelines/shop")
    page.locator('[data-stage="Release"] [data-role="approve"]').wait_for(state="visible")
    page.evaluate("window.__sameDocument = true")
    token = '[data-stage="Release"] form input[name="csrf"]'
    before = page.locator(token).get_attribute("value")

    server.restart()  # a new process: the live stream reconnects and brings new form tokens
    page.wait_for_function(
        "([selector, old]) => document.querySelector(selector).value !== old", arg=[token, before]
    )
    page.wait_for_selector("#connection", state="hidden")
    page.locator('[data-stage="Release"] [data-role="approve"]').click()
    page.wait_for_selector('#notice:has-text("Approved Release/Approve")')
    page.wait_for_selector('section[data-stage="Release"][data-status="Succeeded"]')
    assert page.evaluate("window.__sameDocument") is True
