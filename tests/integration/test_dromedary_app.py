"""The dromedary sample app: its own tests, its handler with real proxy events, its e2e suite
against a live local server (full and smoke mode), and its package running on the platform."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rich.console import Console

from caravan.artifacts.zipfiles import zip_bytes
from caravan.cli.commands.run import run_once
from caravan.model.manifest import load_manifest
from caravan.platform.api import ApiRequest, StageContext, load_definition, proxy_event_v1
from caravan.platform.api.routing import match_route
from caravan.platform.functions import FunctionRegistry, Invoker

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dromedary"
Handler = Callable[[Mapping[str, Any], object], dict[str, Any]]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A private copy of the sample, so runs leave nothing in the repository."""
    copy = tmp_path / "dromedary"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "dist", ".data"))
    return copy


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run(argv, cwd=cwd, env=clean, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def devserver() -> Iterator[ModuleType]:
    """The sample's tools/devserver.py, which also puts the sample's ``src`` on sys.path."""
    spec = importlib.util.spec_from_file_location(
        "dromedary_devserver", SAMPLE / "tools" / "devserver.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    source = str(SAMPLE / "src")
    if source in sys.path:
        sys.path.remove(source)
    for name in [n for n in sys.modules if n == "dromedary" or n.startswith("dromedary.")]:
        del sys.modules[name]


@pytest.fixture
def handler(devserver: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Handler:
    monkeypatch.setenv("DROMEDARY_DATA_DIR", str(tmp_path / "data"))
    function: Handler = devserver.load_handler()
    return function


# The sample's own unit tests ---------------------------------------------------------------


def test_the_samples_unit_tests_pass_in_a_subprocess(sample: Path) -> None:
    result = run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests/unit", "-t", "."], sample
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stderr


def test_the_samples_lint_passes_and_packaging_makes_three_trees(sample: Path) -> None:
    assert run([sys.executable, "tools/check.py"], sample).returncode == 0
    sha = "0123456789abcdef0123456789abcdef01234567"
    result = run([sys.executable, "tools/package.py", "dist"], sample, COMMIT_ID=sha)
    assert result.returncode == 0, result.stderr
    dist = sample / "dist"
    assert (dist / "function" / "dromedary" / "VERSION").read_text().strip() == sha
    assert not list((dist / "function").rglob("__pycache__"))
    assert (dist / "site" / "index.html").read_bytes() == (
        sample / "site" / "index.html"
    ).read_bytes()
    assert (dist / "api" / "openapi.yaml").is_file()


# The handler, called in-process with the platform's proxy events -----------------------------

DEFINITION = load_definition(SAMPLE / "openapi.yaml")


def proxy_event(
    path: str, query: str = "", *, table: str = "test", ip: str = "198.51.100.7"
) -> dict[str, Any]:
    """The REST API event the platform's gateway sends for ``GET path?query`` on a stage."""
    match = match_route(DEFINITION, "GET", path)
    assert match is not None, f"openapi.yaml has no route for {path}"
    request = ApiRequest(method="GET", path=path, full_path=path, query_string=query, source_ip=ip)
    stage = StageContext(
        api_id="dromedary", stage=table, variables={"alias": table, "table": table}
    )
    return proxy_event_v1(request, match, stage)


def call(handler: Handler, path: str, query: str = "", **kwargs: Any) -> tuple[int, Any]:
    answer = handler(proxy_event(path, query, **kwargs), None)
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["Access-Control-Allow-Origin"] == "*"
    return answer["statusCode"], json.loads(answer["body"])


def test_data_lists_the_chart_and_counts_only_its_values(handler: Handler) -> None:
    status, items = call(handler, "/data")
    assert status == 200
    assert all(set(item) == {"label", "value", "color", "highlight"} for item in items)
    assert call(handler, "/data", "countsOnly") == (200, {i["label"]: i["value"] for i in items})


def test_increment_counts_a_vote_and_refuses_unknown_colours(handler: Handler) -> None:
    before = call(handler, "/data", "countsOnly&nocache")[1]["green"]
    assert call(handler, "/increment", "color=green") == (200, {"count": before + 1})
    assert call(handler, "/increment", "color=mauve", ip="198.51.100.8") == (
        400,
        {"error": "Unknown color"},
    )
    assert call(handler, "/increment") == (200, {"count": 0})


def test_votes_from_one_ip_are_throttled(handler: Handler) -> None:
    assert call(handler, "/increment", "color=blue")[0] == 200
    assert call(handler, "/increment", "color=blue") == (429, {"error": "Request throttled"})


def test_each_stage_votes_in_its_own_table(handler: Handler, tmp_path: Path) -> None:
    call(handler, "/increment", "color=orange", table="test")
    test = call(handler, "/data", "countsOnly&nocache", table="test")[1]
    prod = call(handler, "/data", "countsOnly&nocache", table="prod")[1]
    assert test["orange"] == prod["orange"] + 1
    assert sorted(p.name for p in (tmp_path / "data").glob("*.json")) == ["test.json"]


# The e2e suite against a live local server ---------------------------------------------------


@pytest.fixture
def live(devserver: ModuleType, handler: Handler, sample: Path) -> Iterator[str]:
    server = devserver.make_server(
        "127.0.0.1", 0, table="e2e", site_dir=SAMPLE / "site", function=handler
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def e2e(sample: Path, target: str, mode: str = "full") -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "tests.e2e"], sample, TARGET_URL=target, E2E_MODE=mode)


def stored_counts(tmp_path: Path) -> dict[str, int]:
    path = tmp_path / "data" / "e2e.json"
    return json.loads(path.read_text())["counts"] if path.exists() else {}


def test_e2e_full_mode_passes_and_votes_once(sample: Path, live: str, tmp_path: Path) -> None:
    result = e2e(sample, live)
    assert result.returncode == 0, result.stderr
    assert "IncrementTest.test_increment_adds_one_vote) ... ok" in result.stderr
    assert sum(stored_counts(tmp_path).values()) == 10 * 5 + 1


def test_e2e_smoke_mode_passes_and_changes_no_count(
    sample: Path, live: str, tmp_path: Path
) -> None:
    e2e(sample, live)  # some votes first, so "unchanged" is not just "never written"
    before = stored_counts(tmp_path)
    result = e2e(sample, live, mode="smoke")
    assert result.returncode == 0, result.stderr
    assert "skipped 'E2E_MODE=smoke" in result.stderr
    assert stored_counts(tmp_path) == before


def test_e2e_fails_when_the_site_differs_from_the_repository(sample: Path, live: str) -> None:
    (sample / "site" / "index.html").write_text("<!DOCTYPE html><title>stale</title>\n")
    result = e2e(sample, live, mode="smoke")
    assert result.returncode == 1
    assert "test_served_page_equals_the_repository_page) ... FAIL" in result.stderr


def test_e2e_without_target_url_says_so(sample: Path) -> None:
    result = run([sys.executable, "-m", "tests.e2e"], sample)
    assert result.returncode == 2
    assert "TARGET_URL is required" in result.stderr


# The package on the platform, as the manifest declares it ------------------------------------


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[FunctionRegistry, Invoker]]:
    registry = FunctionRegistry(tmp_path / "platform")
    invoker = Invoker(registry)
    yield registry, invoker
    await invoker.aclose()


async def test_the_packaged_function_runs_on_the_platform_as_declared(
    sample: Path, tmp_path: Path, platform: tuple[FunctionRegistry, Invoker]
) -> None:
    registry, invoker = platform
    manifest = load_manifest(sample / "caravan.yml")
    spec = manifest.functions["api"]
    assert run([sys.executable, "tools/package.py", "dist"], sample).returncode == 0
    name = manifest.function_name("api")
    registry.create_function(
        name,
        handler=spec.handler,
        code=zip_bytes(sample / "dist" / "function"),
        runtime=spec.runtime,
        memory_size=spec.memory_size,
        timeout=spec.timeout,
        environment=spec.resolved_environment(data_dir=str(tmp_path / "app-data")),
        publish=True,
    )
    registry.create_alias(name, "test", "1")

    async def get(path: str, query: str = "") -> tuple[int, Any]:
        event = json.dumps(proxy_event(path, query, table="test")).encode()
        result = await invoker.invoke(name, event, qualifier="test")
        assert result.function_error is None, result.payload
        answer = json.loads(result.payload)
        return answer["statusCode"], json.loads(answer["body"])

    assert await get("/increment", "color=purple") == (200, {"count": 11})
    assert (await get("/data", "countsOnly&nocache"))[1]["purple"] == 11
    status, config = await get("/config.json")
    assert status == 200 and config["apiBaseurl"] == ""
    assert (tmp_path / "app-data" / "test.json").is_file()


# The pipeline's Commit stage, with caravan's real actions ------------------------------------


async def test_the_commit_stage_tests_and_packages_the_sample(sample: Path, tmp_path: Path) -> None:
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    identity["GIT_COMMITTER_EMAIL"] = "t@t"
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        assert run(["git", *args], sample, **identity).returncode == 0
    request = load_manifest(sample / "caravan.yml").pipeline.to_request()
    # Acceptance and Production need caravan's deploy actions; Source and Commit are the app's.
    request["pipeline"]["stages"] = request["pipeline"]["stages"][:2]
    request["declarationDir"] = str(sample)
    board = io.StringIO()
    status = await run_once(request, [], tmp_path / "engine", Console(file=board, width=120))
    assert status == "Succeeded", board.getvalue()
