"""The issue's "done when": `caravan demo --once` brings the dromedary sample from a fresh git
repository to production, and then, with the server serving the demo's data again (the same
port, so the git hooks the demo installed still reach it):

* prod serves the app's index.html and a config.json whose version is the deployed commit;
* a commit breaking a unit test stops in Commit, and prod is untouched;
* a commit breaking the end-to-end test stops in Acceptance, and prod is untouched;
* a commit whose new version fails its health checks in prod is rolled back automatically while
  a client's requests to prod keep succeeding (only those the canary served may fail).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(300)

CARAVAN = [sys.executable, "-m", "caravan"]
PROD = "prod.dromedary.localhost"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
# Appended to the function's module: the new version answers /data with a 500 when invoked
# through the prod alias only, so it passes the unit tests and Acceptance and fails only its
# canary's health check.
FAILS_IN_PROD = """

_healthy_handler = handler


def handler(event, context):
    through_prod = getattr(context, "invoked_function_arn", "").endswith(":prod")
    if through_prod and event.get("path") == "/data":
        return respond(500, {"error": "this version is broken in prod"})
    return _healthy_handler(event, context)
"""


class Server:
    """`caravan server` over the demo's data directory, on the port the demo used."""

    def __init__(self, data: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            [*CARAVAN, "server", "--data", str(data), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, f"no ready line from the server: {line!r}"
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, trust_env=False, timeout=10)

    def get(self, path: str, host: str = PROD) -> httpx.Response:
        return self.http.get(path, headers={"Host": host})

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CARAVAN, "--url", self.url, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "NO_COLOR": "1"},
        )

    def stop(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=15)
        if self.proc.stdout:
            self.proc.stdout.close()


@dataclass
class Traffic:
    """A client sending requests to prod's /api/data until stopped: (time, status, version)."""

    server: Server
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, trust_env=False, timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    answer = client.get("/api/data", headers={"Host": PROD})
                except httpx.HTTPError:
                    self.answers.append((time.monotonic(), 0, ""))  # no answer at all
                    continue
                version = answer.headers.get("x-amz-executed-version", "")
                self.answers.append((time.monotonic(), answer.status_code, version))
                time.sleep(0.005)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server]]:
    directory = tmp_path_factory.mktemp("demo") / "dromedary"
    done = subprocess.run(
        [*CARAVAN, "demo", "--once", "--dir", str(directory), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ready = re.search(r"listening on http://127\.0\.0\.1:(\d+)", done.stdout)
    assert ready, done.stdout
    port = int(ready.group(1))
    assert f"http://prod.dromedary.localhost:{port}/" in done.stdout
    assert f"http://test.dromedary.localhost:{port}/" in done.stdout
    server = Server(directory / ".caravan", port)
    yield directory, server
    server.stop()


def head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(repo: Path, message: str, *, hooks: bool = True) -> None:
    """Commit everything; the post-commit hook the demo installed starts an execution."""
    env = GIT_ENV if hooks else {**GIT_ENV, "CARAVAN_HOOKS": "off"}
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True)


def revert(repo: Path) -> None:
    """Undo the last commit without starting an execution (the hooks are told to keep quiet)."""
    subprocess.run(
        ["git", "revert", "--no-edit", "HEAD"],
        cwd=repo,
        env={**GIT_ENV, "CARAVAN_HOOKS": "off"},
        check=True,
        capture_output=True,
    )


def stage_statuses(server: Server) -> dict[str, tuple[str | None, str | None]]:
    """Each stage's latest (status, execution id)."""
    state = json.loads(server.cli("status", "dromedary", "--json").stdout)
    return {
        s["stageName"]: (
            (s.get("latestExecution") or {}).get("status"),
            (s.get("latestExecution") or {}).get("pipelineExecutionId"),
        )
        for s in state["stageStates"]
    }


def latest_execution(server: Server) -> str:
    listed = json.loads(server.cli("executions", "dromedary", "--json").stdout)
    execution_id: str = listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
    return execution_id


def test_prod_serves_the_app_with_the_deployed_commit_as_its_version(
    demo: tuple[Path, Server],
) -> None:
    repo, server = demo
    page = server.get("/")
    assert page.status_code == 200
    assert page.content == (repo / "site" / "index.html").read_bytes()
    config = server.get("/config.json").json()
    assert config["version"] == head(repo)
    assert server.get("/api/data?countsOnly").status_code == 200


def test_a_commit_breaking_a_unit_test_stops_in_commit(demo: tuple[Path, Server]) -> None:
    repo, server = demo
    before = server.get("/config.json").json()["version"]
    test_file = repo / "tests" / "unit" / "test_colours.py"
    test_file.write_text(
        test_file.read_text() + "\n\nclass Broken(unittest.TestCase):\n"
        "    def test_broken(self):\n        self.fail('broken on purpose')\n"
    )
    commit(repo, "break a unit test")
    waited = server.cli("wait", "dromedary", "--timeout", "60")
    assert waited.returncode == 1, waited.stdout + waited.stderr
    execution = latest_execution(server)
    stages = stage_statuses(server)
    assert stages["Commit"] == ("Failed", execution)
    assert stages["Acceptance"][1] != execution  # Acceptance never started
    assert server.get("/config.json").json()["version"] == before
    revert(repo)


def test_a_commit_breaking_the_end_to_end_test_stops_in_acceptance(
    demo: tuple[Path, Server],
) -> None:
    repo, server = demo
    before = server.get("/config.json").json()["version"]
    e2e = repo / "tests" / "e2e" / "e2e_site.py"
    e2e.write_text(
        e2e.read_text() + "\n\nclass BrokenEndToEnd(unittest.TestCase):\n"
        "    def test_broken(self):\n        self.fail('broken on purpose')\n"
    )
    commit(repo, "break the end-to-end test")
    waited = server.cli("wait", "dromedary", "--timeout", "60")
    assert waited.returncode == 1, waited.stdout + waited.stderr
    execution = latest_execution(server)
    stages = stage_statuses(server)
    assert stages["Commit"] == ("Succeeded", execution)
    assert stages["Acceptance"] == ("Failed", execution)
    assert stages["Production"][1] != execution
    assert server.get("/config.json").json()["version"] == before
    revert(repo)


def test_a_version_failing_its_health_checks_in_prod_is_rolled_back_while_requests_succeed(
    demo: tuple[Path, Server],
) -> None:
    repo, server = demo
    before = server.get("/config.json").json()["version"]
    old_version = server.get("/api/data").headers["x-amz-executed-version"]
    traffic = Traffic(server)
    client = threading.Thread(target=traffic.run, daemon=True)
    client.start()
    try:
        module = repo / "src" / "dromedary" / "api.py"
        module.write_text(module.read_text() + FAILS_IN_PROD)
        commit(repo, "a version that fails in prod")
        waited = server.cli("wait", "dromedary", "--timeout", "90")
        rolled_back = time.monotonic()
        time.sleep(1.0)  # requests after the rollback
    finally:
        traffic.stopping.set()
        client.join(timeout=15)
    assert waited.returncode == 1, waited.stdout + waited.stderr
    execution = latest_execution(server)
    assert stage_statuses(server)["Production"] == ("Failed", execution)
    actions = server.cli("actions", "dromedary", "--execution", execution, "--json")
    listed = json.loads(actions.stdout)
    [deploy] = [
        d
        for d in listed["actionExecutionDetails"]
        if (d["stageName"], d["actionName"]) == ("Production", "DeployApp")
    ]
    error = deploy["output"]["executionResult"]["errorDetails"]["message"]
    assert "rolled back" in error and "error rate" in error

    failures = [a for a in traffic.answers if a[1] != 200]
    assert failures, "the canary served no request: the test proves nothing"
    assert all(version not in ("", old_version) for _, _, version in failures)
    assert len(failures) < len(traffic.answers) // 2
    after = [a for a in traffic.answers if a[0] > rolled_back]
    assert after and all(status == 200 and v == old_version for _, status, v in after)
    assert server.get("/config.json").json()["version"] == before
    status = server.cli("status", "dromedary")
    assert "rolled-back" in status.stdout, status.stdout
