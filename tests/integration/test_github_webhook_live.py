"""A GitHub-format push webhook against a real server: signed with the shared secret it starts
the pipeline whose GitHub source names that repository; unsigned or wrongly signed it is refused
with 401 and recorded, and starts nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import make_repo, running_server

SECRET = "s3cr3t-for-tests"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    commit = make_repo(tmp_path / "repo", {"app.txt": "v1\n"})
    env = {
        "CARAVAN_WEBHOOK_SECRET": SECRET,
        "CARAVAN_GIT_REPOSITORIES": f"acme/shop={tmp_path / 'repo'}",
    }
    with running_server(tmp_path / "data", env) as url:
        yield url, commit


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
