"""Read commands: the stage board, execution and action listings, pipelines; --json prints the
API response exactly."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fake_engine import FakeEngine

from caravan.cli.main import Settings, cli
from caravan.server.app import create_app

Caravan = Callable[..., Result]


def api(engine: FakeEngine, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = asyncio.run(engine.call(operation, request))
    engine.calls.pop()
    return answer


@pytest.fixture
def busy(engine: FakeEngine) -> dict[str, str]:
    """An execution that failed in Build, a newer one waiting in front of Build, and Deploy's
    inbound transition disabled."""
    old = engine.add_execution("demo", status="Succeeded", started=1_700_000_000)
    engine.add_action("demo", old, "Source", "Checkout", summary="commit 1111111", duration=2)
    failed = engine.add_execution(
        "demo", status="Failed", variables=[{"name": "env", "value": "qa"}]
    )
    engine.add_action("demo", failed, "Source", "Checkout", summary="commit 9f1e2d3\nbody")
    engine.add_action("demo", failed, "Build", "Test", status="Succeeded", duration=3.25)
    engine.add_action(
        "demo", failed, "Build", "Compile", status="Failed", error="make: *** [all] Error 2\nmore"
    )
    engine.set_stage("demo", failed, "Build", "Failed")
    waiting = engine.add_execution("demo", status="InProgress")
    engine.add_inbound("demo", "Build", waiting, "InProgress")
    engine.pipelines["demo"]["transitions"]["Deploy"] = {
        "enabled": False,
        "disabledReason": "release freeze",
    }
    return {"old": old, "failed": failed, "waiting": waiting}


def test_board_shows_stages_actions_waiting_execution_and_disabled_transition(
    caravan: Caravan, busy: dict[str, str]
) -> None:
    result = caravan("status", "demo")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "demo  version 1 · SUPERSEDED · V2"
    out = result.output
    assert re.search(rf"^Source\s+Succeeded\s+execution {busy['failed'][:8]}$", out, re.M)
    assert re.search(rf"^Build\s+Failed\s+execution {busy['failed'][:8]}$", out, re.M)
    assert f"waiting: {busy['waiting'][:8]} (InProgress)" in out
    assert re.search(r"^\s+1  Checkout\s+Succeeded\s+1\.5s  commit 9f1e2d3$", out, re.M)
    assert re.search(r"^\s+1  Compile\s+Failed\s+1\.5s  make: \*\*\* \[all\] Error 2$", out, re.M)
    assert re.search(r"^\s+2  Test\s+Succeeded\s+3\.2s$", out, re.M)
    assert out.index("1  Compile") < out.index("2  Test")  # run order, not record order
    assert re.search(r"^Deploy\s+not run yet$", out, re.M)
    assert "transition disabled: release freeze" in out
    assert re.search(r"^\s+1  Approve\s+-$", out, re.M)
    assert "more" not in out  # only the first line of a message
    assert "\x1b[" not in out  # no colour codes when not on a terminal


def test_board_marks_an_approval_waiting(caravan: Caravan, engine: FakeEngine) -> None:
    execution = engine.add_execution("demo")
    engine.add_action("demo", execution, "Deploy", "Approve", status="InProgress", token="t-1")
    result = caravan("status", "demo")
    assert re.search(
        r"^\s+1  Approve\s+InProgress\s+\S+  waiting for approval$", result.output, re.M
    )


def test_read_commands_json_is_the_api_response(
    caravan: Caravan, engine: FakeEngine, busy: dict[str, str]
) -> None:
    failed = busy["failed"]
    cases = [
        (["status", "demo"], "GetPipelineState", {"name": "demo"}),
        (
            ["executions", "demo", "--max", "2"],
            "ListPipelineExecutions",
            {"pipelineName": "demo", "maxResults": 2},
        ),
        (
            ["execution", "demo", failed],
            "GetPipelineExecution",
            {"pipelineName": "demo", "pipelineExecutionId": failed},
        ),
        (
            ["actions", "demo", "--execution", failed],
            "ListActionExecutions",
            {"pipelineName": "demo", "filter": {"pipelineExecutionId": failed}},
        ),
        (["actions", "demo"], "ListActionExecutions", {"pipelineName": "demo"}),
        (["pipeline", "get", "demo"], "GetPipeline", {"name": "demo"}),
        (["pipeline", "list"], "ListPipelines", {}),
    ]
    for args, operation, request in cases:
        result = caravan(*args, "--json")
        assert result.exit_code == 0, (args, result.output)
        assert json.loads(result.output) == api(engine, operation, request), args


def test_executions_lists_newest_first_with_short_ids(
    caravan: Caravan, busy: dict[str, str]
) -> None:
    result = caravan("executions", "demo")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["Execution", "Status", "Trigger", "Started", "Duration", "Summary"]
    assert [line.split()[:2] for line in lines[1:]] == [
        [busy["waiting"][:8], "InProgress"],
        [busy["failed"][:8], "Failed"],
        [busy["old"][:8], "Succeeded"],
    ]


def test_execution_accepts_an_id_prefix_and_shows_variables_and_actions(
    caravan: Caravan, busy: dict[str, str]
) -> None:
    result = caravan("execution", "demo", busy["failed"][:6])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(rf"^Execution\s+{busy['failed']}$", out, re.M)
    assert re.search(r"^Status\s+Failed$", out, re.M)
    assert re.search(r"^Variable\s+env=qa$", out, re.M)
    assert re.search(r"^Build\s+Compile\s+Failed\s.*make: \*\*\* \[all\] Error 2$", out, re.M)


def test_execution_unknown_or_ambiguous_id_is_exit_2(caravan: Caravan, engine: FakeEngine) -> None:
    missing = caravan("execution", "demo", "zzzz")
    assert missing.exit_code == 2
    assert "has no execution whose id starts with 'zzzz'" in missing.stderr
    for _ in range(20):  # 20 random ids share some first hex digit
        engine.add_execution("demo")
    ids = [e["pipelineExecutionId"] for e in engine.executions["demo"]]
    shared = next(i[0] for i in ids if sum(j[0] == i[0] for j in ids) > 1)
    ambiguous = caravan("execution", "demo", shared)
    assert ambiguous.exit_code == 2
    assert "is ambiguous" in ambiguous.stderr


def test_actions_lists_every_action_execution(caravan: Caravan, busy: dict[str, str]) -> None:
    result = caravan("actions", "demo")
    assert result.exit_code == 0
    rows = [line.split()[:4] for line in result.output.splitlines()[1:]]
    assert [busy["failed"][:8], "Build", "Compile", "Failed"] in rows
    assert [busy["old"][:8], "Source", "Checkout", "Succeeded"] in rows
    assert len(rows) == 4


def test_pipeline_get_and_list(caravan: Caravan, engine: FakeEngine) -> None:
    shown = caravan("pipeline", "get", "demo")
    assert shown.exit_code == 0
    assert shown.output.splitlines()[0] == "demo  version 1 · SUPERSEDED · V2"
    assert re.search(
        r"^Deploy\n\s+1  Approve\s+Build/AWS/CodeBuild\n\s+2  Release", shown.output, re.M
    )
    listed = caravan("pipeline", "list")
    assert listed.output.splitlines()[1].split()[:4] == ["demo", "1", "V2", "SUPERSEDED"]
    old = caravan("pipeline", "get", "demo", "--version", "2")
    assert old.exit_code == 2
    assert old.stderr == "caravan: error: pipeline 'demo' has no version 2\n"


def test_unknown_pipeline_is_exit_2_with_one_line(caravan: Caravan) -> None:
    for args in (["status", "nope"], ["executions", "nope"], ["pipeline", "get", "nope"]):
        result = caravan(*args)
        assert result.exit_code == 2
        assert result.stderr == "caravan: error: pipeline 'nope' does not exist\n"
        assert result.stdout == ""


def test_client_takes_an_injected_transport(engine: FakeEngine) -> None:
    """The CLI runs against the app in-process when given httpx's ASGI transport."""
    settings = Settings(transport=httpx.ASGITransport(app=create_app(engine)))
    result = CliRunner().invoke(cli, ["status", "demo", "--json"], obj=settings)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pipelineName"] == "demo"
