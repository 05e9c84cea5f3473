"""A GitHub-format push webhook against a real server: signed with the shared secret it starts
the pipeline whose GitHub source names that repository; unsigned or wrongly signed it is refused
with 401 and recorded, and starts nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SECRET = "s3cr3t-for-tests"


def make_repo(path: Path) -> str:
    path.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (path / "app.txt").write_text("v1\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, text=True, capture_output=True
    ).stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    commit = make_repo(tmp_path / "repo")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caravan",
            "server",
            "--data",
            str(tmp_path / "data"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "CARAVAN_WEBHOOK_SECRET": SECRET,
            "CARAVAN_GIT_REPOSITORIES": f"acme/shop={tmp_path / 'repo'}",
        },
    )
    assert proc.stdout is not None
    match = re.search(r"listening on (http://\S+)", proc.stdout.readline())
    assert match, "the server did not start"
    yield match.group(1), commit
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    proc.stdout.close()


def executions(url: str) -> list[dict]:
    body = httpx.post(f"{url}/api/ListPipelineExecutions", json={"pipelineName": "shop"}).json()
    return body["pipelineExecutionSummaries"]


def test_a_signed_push_starts_the_pipeline_and_an_unsigned_one_does_not(
    server: tuple[str, str],
) -> None:
    url, commit = server
    declaration = {
        "pipeline": {
            "name": "shop",
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Source",
                            "outputArtifacts": [{"name": "Src"}],
                            "actionTypeId": {
                                "category": "Source",
                                "owner": "ThirdParty",
                                "provider": "GitHub",
                                "version": "1",
                            },
                            "configuration": {
                                "Owner": "acme",
                                "Repo": "shop",
                                "Branch": "main",
                                "OAuthToken": "****",
                            },
                        }
                    ],
                },
                {
                    "name": "Build",
                    "actions": [
                        {
                            "name": "Check",
                            "inputArtifacts": [{"name": "Src"}],
                            "actionTypeId": {
                                "category": "Compute",
                                "owner": "AWS",
                                "provider": "Commands",
                                "version": "1",
                            },
                            "commands": ["grep -q v1 app.txt"],
                        }
                    ],
                },
            ],
        }
    }
    assert httpx.post(f"{url}/api/CreatePipeline", json=declaration).status_code == 200
    deadline = time.monotonic() + 30
    while executions(url)[0]["status"] == "InProgress":  # the creation run
        assert time.monotonic() < deadline
        time.sleep(0.05)
    payload = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": commit,
            "created": False,
            "repository": {
                "full_name": "acme/shop",
                "clone_url": "https://github.com/acme/shop.git",
            },
            "commits": [{"id": commit, "added": ["app.txt"], "modified": [], "removed": []}],
        }
    ).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-1",
        "Content-Type": "application/json",
    }

    unsigned = httpx.post(f"{url}/webhooks/github", content=payload, headers=headers)
    wrong = httpx.post(
        f"{url}/webhooks/github",
        content=payload,
        headers={**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert unsigned.status_code == 401 and wrong.status_code == 401
    assert len(executions(url)) == 1  # nothing started

    signature = hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    signed = httpx.post(
        f"{url}/webhooks/github",
        content=payload,
        headers={**headers, "X-Hub-Signature-256": f"sha256={signature}"},
    )
    assert signed.status_code in (200, 202), signed.text
    started = executions(url)
    assert len(started) == 2
    assert started[0]["trigger"]["triggerType"] == "WebhookV2"
    while executions(url)[0]["status"] == "InProgress":
        assert time.monotonic() < deadline + 30
        time.sleep(0.05)
    latest = executions(url)[0]
    assert latest["status"] == "Succeeded"
    assert latest["sourceRevisions"][0]["revisionId"] == commit

    deliveries = httpx.get(f"{url}/api/webhooks/deliveries").json()
    outcomes = [d.get("outcome") for d in deliveries.get("deliveries", deliveries)]
    assert outcomes.count("rejected") >= 2, deliveries
