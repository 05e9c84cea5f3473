"""The app commands against a real `caravan server` process (real engine, real platform, real
git repositories with the hooks `up` installs): up, status, wait, rollback, down — and boto3's
s3, lambda and codepipeline clients all served on the server's one port."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from caravan.cli.main import cli

pytestmark = pytest.mark.timeout(120)

HANDLER = """\
import json

RELEASE = {release!r}


def handler(event, context):
    body = {{"release": RELEASE, "version": context.function_version}}
    return {{"statusCode": 200, "headers": {{"Content-Type": "application/json"}},
            "body": json.dumps(body)}}
"""

OPENAPI = """\
openapi: 3.0.3
info: {{title: {app}, version: "1"}}
paths:
  /hello:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: "{uri}"
        payloadFormatVersion: "1.0"
"""

FUNCTION_ARN = "arn:aws:lambda:local:000000000000:function:{app}-api:${{stageVariables.alias}}"
URI = "arn:aws:apigateway:local:lambda:path/2015-03-31/functions/" + FUNCTION_ARN + "/invocations"

MANIFEST = """\
app: {app}
functions:
  api: {{handler: handler.handler, artifact: SourceOutput, path: app}}
api: {{definition: openapi.yaml, artifact: SourceOutput}}
site: {{artifact: SourceOutput, path: site}}
environments:
  test: {{}}
pipeline:
  stages:
    - name: Source
      actions:
        - name: Source
          actionTypeId: {{category: Source, owner: Custom, provider: Git, version: "1"}}
          configuration: {{Repository: ".", Branch: main}}
          outputArtifacts: [{{name: SourceOutput}}]
    - name: Check
      actions:
        - name: Check
          actionTypeId: {{category: Compute, owner: AWS, provider: Commands, version: "1"}}
          commands: ["if [ -e SLOW ]; then sleep 30; fi", "test ! -e FAIL"]
          inputArtifacts: [{{name: SourceOutput}}]
    - name: Deploy
      actions:
        - name: DeployApp
          actionTypeId: {{category: Deploy, owner: Custom, provider: CaravanFunction, version: "1"}}
          configuration: {{Function: api, Environment: test}}
          inputArtifacts: [{{name: SourceOutput}}]
        - name: DeployApi
          actionTypeId: {{category: Deploy, owner: Custom, provider: CaravanApi, version: "1"}}
          configuration: {{Environment: test}}
          inputArtifacts: [{{name: SourceOutput}}]
        - name: DeploySite
          actionTypeId: {{category: Deploy, owner: Custom, provider: CaravanSite, version: "1"}}
          runOrder: 2
          configuration: {{Environment: test}}
          inputArtifacts: [{{name: SourceOutput}}]
"""

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


class Server:
    """`caravan server` in its own process on a free loopback port."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "caravan", "server", "--data", str(data), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, f"no ready line from the server: {line!r}"
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=15)
        if self.proc.stdout:
            self.proc.stdout.close()

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--url", self.url, *args])

    def get(self, host: str, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"Host": host}, trust_env=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True)


def make_app(tmp_path: Path, app: str) -> Path:
    repo = tmp_path / app
    (repo / "app").mkdir(parents=True)
    (repo / "site").mkdir()
    (repo / "app" / "handler.py").write_text(HANDLER.format(release="R1"))
    (repo / "site" / "index.html").write_text(f"<h1>{app}</h1>\n")
    uri = URI.format(app=app)
    (repo / "openapi.yaml").write_text(OPENAPI.format(app=app, uri=uri))
    (repo / "caravan.yml").write_text(MANIFEST.format(app=app))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def commit(repo: Path, message: str, **files: str) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)  # the post-commit hook starts an execution


def brought_up(server: Server, repo: Path) -> Result:
    result = server.cli("up", str(repo))
    assert result.exit_code == 0, result.output
    waited = server.cli("wait", repo.name, "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    return result


def test_up_twice_status_and_wait(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_app(tmp_path, "alpha")
    first = brought_up(server, repo)
    assert "created environment test (test.alpha.localhost)" in first.output
    assert "created pipeline alpha" in first.output
    assert "installed git hooks" in first.output
    assert (repo / ".git" / "hooks" / "post-commit").is_file()

    again = server.cli("up", str(repo))
    assert again.exit_code == 0, again.output
    assert "alpha is up to date: no changes" in again.output

    monkeypatch.chdir(repo)  # no NAME: the app of ./caravan.yml
    status = server.cli("status")
    assert status.exit_code == 0, status.output
    assert f"http://test.alpha.localhost:{server.port}" in status.output
    assert re.search(r"alpha-api:test\s+1 100%", status.output), status.output
    assert "Deploy" in status.output and "Succeeded" in status.output  # then the board
    as_json = json.loads(server.cli("status", "alpha", "--json").output)
    assert as_json["pipelineName"] == "alpha"  # GetPipelineState's shape ...
    assert as_json["app"]["environments"][0]["name"] == "test"  # ... with the app added

    answer = server.get("test.alpha.localhost", "/api/hello").json()
    assert answer == {"release": "R1", "version": "1"}
    dashboard = server.get("127.0.0.1", "/environments")  # the dashboard sees the app too
    assert dashboard.status_code == 200
    assert f"http://test.alpha.localhost:{server.port}" in dashboard.text
    assert 'data-version="1"' in dashboard.text


def test_wait_exit_codes_follow_the_execution(server: Server, tmp_path: Path) -> None:
    repo = make_app(tmp_path, "bravo")
    brought_up(server, repo)

    commit(repo, "break the check", FAIL="")
    failed = server.cli("wait", "bravo", "--timeout", "60")
    assert failed.exit_code == 1, failed.output
    assert "Failed" in failed.output

    commit(repo, "a slow check", SLOW="")
    timed_out = server.cli("wait", "bravo", "--timeout", "0.5")
    assert timed_out.exit_code == 1
    assert "timed out after 0.5s waiting for execution" in timed_out.output
    assert "Traceback" not in timed_out.output
    stopped = server.cli("stop", "bravo", "--abandon")
    assert stopped.exit_code == 0, stopped.output

    unknown = server.cli("wait", "no-such-app")
    assert unknown.exit_code == 2
    assert "no app 'no-such-app'" in unknown.output


def test_rollback_moves_the_alias_and_site_back(server: Server, tmp_path: Path) -> None:
    repo = make_app(tmp_path, "charlie")
    brought_up(server, repo)
    commit(repo, "release two", **{"app/handler.py": HANDLER.format(release="R2")})
    assert server.cli("wait", "charlie", "--timeout", "60").exit_code == 0
    assert server.get("test.charlie.localhost", "/api/hello").json()["release"] == "R2"

    rolled = server.cli("rollback", "charlie", "test")
    assert rolled.exit_code == 0, rolled.output
    assert "charlie-api:test  version 2 -> 1" in rolled.output
    assert server.get("test.charlie.localhost", "/api/hello").json() == {
        "release": "R1",
        "version": "1",
    }
    nothing = server.cli("rollback", "charlie", "nowhere")
    assert nothing.exit_code == 2 and "no environment 'nowhere'" in nothing.output


def test_down_removes_the_app_and_its_hooks(server: Server, tmp_path: Path) -> None:
    repo = make_app(tmp_path, "delta")
    brought_up(server, repo)
    down = server.cli("down", "delta")
    assert down.exit_code == 0, down.output
    for change in ("deleted pipeline delta", "removed environment test", "removed git hooks"):
        assert change in down.output
    assert "its data is kept" in down.output
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    assert server.cli("status", "delta").exit_code == 2
    assert server.get("test.delta.localhost", "/api/hello").status_code != 200
    again = server.cli("down", "delta")
    assert again.exit_code == 2 and "no app 'delta'" in again.output


def test_down_of_a_half_created_app(server: Server, tmp_path: Path) -> None:
    """Environments without their pipeline, and a pipeline without its environments."""
    repo = make_app(tmp_path, "echo")
    brought_up(server, repo)
    server.cli("pipeline", "delete", "echo")
    down = server.cli("down", "echo")
    assert down.exit_code == 0, down.output
    assert "removed environment test" in down.output

    repo = make_app(tmp_path, "foxtrot")
    declaration = tmp_path / "foxtrot.yml"
    pipeline = MANIFEST.format(app="foxtrot").split("pipeline:\n", 1)[1]
    declaration.write_text("pipeline:\n  name: foxtrot\n" + pipeline)
    assert server.cli("pipeline", "create", str(declaration)).exit_code == 0
    down = server.cli("down", "foxtrot")
    assert down.exit_code == 0, down.output
    assert "deleted pipeline foxtrot" in down.output


def test_a_bad_manifest_lists_every_issue_and_exits_2(server: Server, tmp_path: Path) -> None:
    repo = make_app(tmp_path, "golf")
    text = MANIFEST.format(app="golf").replace("artifact: SourceOutput, path: app", "path: app")
    (repo / "caravan.yml").write_text(text.replace("environments:\n  test: {}", "environments: 3"))
    result = server.cli("up", str(repo))
    assert result.exit_code == 2
    assert "functions.api.artifact: is required" in result.output
    assert "environments" in result.output
    assert "Traceback" not in result.output


def test_boto3_s3_lambda_and_codepipeline_share_the_one_port(server: Server) -> None:
    boto3 = pytest.importorskip("boto3")
    options = {
        "endpoint_url": server.url,
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret",
    }
    s3 = boto3.client("s3", **options)
    s3.create_bucket(Bucket="edge-check")
    s3.put_object(Bucket="edge-check", Key="a/b.txt", Body=b"one port")
    assert s3.get_object(Bucket="edge-check", Key="a/b.txt")["Body"].read() == b"one port"

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("fn.py", "def handler(event, context):\n    return {'echo': event}\n")
    aws_lambda = boto3.client("lambda", **options)
    aws_lambda.create_function(
        FunctionName="edge-echo",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/any",
        Handler="fn.handler",
        Code={"ZipFile": code.getvalue()},
    )
    answer = aws_lambda.invoke(FunctionName="edge-echo", Payload=b'{"n": 1}')
    assert json.loads(answer["Payload"].read()) == {"echo": {"n": 1}}

    codepipeline = boto3.client("codepipeline", **options)
    assert isinstance(codepipeline.list_pipelines()["pipelines"], list)
    with pytest.raises(codepipeline.exceptions.PipelineNotFoundException):
        codepipeline.get_pipeline_state(name="no-such-pipeline")
