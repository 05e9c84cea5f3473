"""A pipeline action written as for AWS — a Lambda function that only uses boto3 — runs in a
caravan pipeline unchanged: it downloads its input artifact from S3, runs a step, uploads its
output artifact, reports through CodePipeline's job API, and uses a continuation token once."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

# The seed's pattern (dromedary-serverless pipeline/lambda/index.js), in Python and boto3 only.
ACTION = """
import io, json, zipfile
import boto3

s3 = boto3.client("s3")
codepipeline = boto3.client("codepipeline")


def handler(event, context):
    job = event["CodePipeline.job"]
    job_id = job["id"]
    data = job["data"]
    try:
        if "continuationToken" not in data:
            # First call: say "still working", as a long action would.
            codepipeline.put_job_success_result(jobId=job_id, continuationToken="step-2")
            return
        source = data["inputArtifacts"][0]["location"]["s3Location"]
        body = s3.get_object(Bucket=source["bucketName"], Key=source["objectKey"])["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            words = archive.read("words.txt").decode().split()
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("count.txt", str(len(words)))
        target = data["outputArtifacts"][0]["location"]["s3Location"]
        s3.put_object(Bucket=target["bucketName"], Key=target["objectKey"], Body=out.getvalue())
        codepipeline.put_job_success_result(
            jobId=job_id, outputVariables={"Words": str(len(words))},
            executionDetails={"summary": "counted words", "percentComplete": 100})
    except Exception as error:
        codepipeline.put_job_failure_result(
            jobId=job_id, failureDetails={"type": "JobFailed", "message": str(error)})
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
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
        env={**os.environ, "CARAVAN_CONTINUATION_DELAY": "0.05"},
    )
    assert proc.stdout is not None
    match = re.search(r"listening on (http://\S+)", proc.stdout.readline())
    assert match, "the server did not start"
    yield match.group(1)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    proc.stdout.close()


def client(service: str, url: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def make_repo(path: Path) -> None:
    path.mkdir()
    (path / "words.txt").write_text("one small step for a caravan\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "words"]):
        subprocess.run(["git", *args], cwd=path, check=True, env=env)


def test_a_boto3_only_action_runs_in_a_pipeline_unchanged(tmp_path: Path, server: str) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", ACTION)
    client("lambda", server).create_function(
        FunctionName="count-words",
        Runtime="python3.11",
        Handler="index.handler",
        Role="arn:aws:iam::000000000000:role/lambda",
        Code={"ZipFile": code.getvalue()},
        Timeout=30,
    )
    pipeline = client("codepipeline", server)
    pipeline.create_pipeline(
        pipeline={
            "name": "seedlike",
            "roleArn": "arn:aws:iam::000000000000:role/cp",
            "artifactStore": {"type": "S3", "location": "seedlike-artifacts"},
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Source",
                            "outputArtifacts": [{"name": "SourceOutput"}],
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
                    "name": "Count",
                    "actions": [
                        {
                            "name": "CountWords",
                            "namespace": "Count",
                            "actionTypeId": {
                                "category": "Invoke",
                                "owner": "AWS",
                                "provider": "Lambda",
                                "version": "1",
                            },
                            "configuration": {"FunctionName": "count-words"},
                            "inputArtifacts": [{"name": "SourceOutput"}],
                            "outputArtifacts": [{"name": "Counted"}],
                        }
                    ],
                },
            ],
        }
    )
    deadline = time.monotonic() + 60
    while True:
        summaries = pipeline.list_pipeline_executions(pipelineName="seedlike")
        status = summaries["pipelineExecutionSummaries"][0]["status"]
        if status not in ("InProgress", "Stopping"):
            break
        assert time.monotonic() < deadline, "the pipeline did not finish"
        time.sleep(0.1)
    execution_id = summaries["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
    details = pipeline.list_action_executions(
        pipelineName="seedlike", filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    count = next(d for d in details if d["actionName"] == "CountWords")
    assert status == "Succeeded", json.dumps(details, default=str)[:3000]
    assert count["output"]["outputVariables"] == {"Words": "6"}
    assert count["output"]["executionResult"]["externalExecutionSummary"] == "counted words"
    location = count["output"]["outputArtifacts"][0]["s3location"]
    body = client("s3", server).get_object(Bucket=location["bucket"], Key=location["key"])
    with zipfile.ZipFile(io.BytesIO(body["Body"].read())) as archive:
        assert archive.read("count.txt") == b"6"
