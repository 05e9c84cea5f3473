"""CodePipeline V1 webhooks end to end: PutWebhook through boto3 gives a URL on the server;
a delivery signed with the webhook's secret whose JSONPath filter matches the target action's
branch starts the pipeline (trigger Webhook); another branch is ignored; unsigned is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import boto3
import httpx
from live_server import make_repo, running_server

SECRET = "v1-secret"


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def test_a_v1_webhook_starts_its_pipeline_when_signed_and_filtered(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"app.txt": "v1\n"})
    with running_server(tmp_path / "data") as url:
        client = boto3.client(
            "codepipeline",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        client.create_pipeline(
            pipeline={
                "name": "hooked",
                "roleArn": "arn:aws:iam::000000000000:role/cp",
                "artifactStore": {"type": "S3", "location": "hooked-artifacts"},
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
                                "name": "Check",
                                "inputArtifacts": [{"name": "Src"}],
                                "actionTypeId": {
                                    "category": "Compute",
                                    "owner": "AWS",
                                    "provider": "Commands",
                                    "version": "1",
                                },
                                "commands": ["test -f app.txt"],
                            }
                        ],
                    },
                ],
            }
        )
        hook = client.put_webhook(
            webhook={
                "name": "on-main",
                "targetPipeline": "hooked",
                "targetAction": "Checkout",
                "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
                "authentication": "GITHUB_HMAC",
                "authenticationConfiguration": {"SecretToken": SECRET},
            }
        )["webhook"]
        assert hook["url"] == f"{url}/webhooks/v1/on-main"

        def count() -> int:
            return len(
                client.list_pipeline_executions(pipelineName="hooked")["pipelineExecutionSummaries"]
            )

        before = count()
        main = json.dumps({"ref": "refs/heads/main"}).encode()
        other = json.dumps({"ref": "refs/heads/feature"}).encode()
        assert httpx.post(hook["url"], content=main).status_code == 401
        ignored = httpx.post(hook["url"], content=other, headers=signed(other))
        assert ignored.status_code == 200 and ignored.json()["started"] is False
        assert count() == before
        started = httpx.post(hook["url"], content=main, headers=signed(main))
        assert started.status_code == 200 and started.json()["started"] is True
        execution_id = started.json()["pipelineExecutionId"]
        deadline = time.monotonic() + 30
        while True:
            execution = client.get_pipeline_execution(
                pipelineName="hooked", pipelineExecutionId=execution_id
            )["pipelineExecution"]
            if execution["status"] != "InProgress":
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert execution["status"] == "Succeeded"
        assert execution["trigger"]["triggerType"] == "Webhook"
        listed = client.list_webhooks()["webhooks"]
        assert listed[0]["lastTriggered"]
