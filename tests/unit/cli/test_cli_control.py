"""Commands that change what runs (start, stop, retry, approve, reject, transition), and the
CLI's exit codes and one-line errors."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from click.testing import Result
from fake_engine import FakeEngine

Caravan = Callable[..., Result]


def last_call(engine: FakeEngine, operation: str) -> dict:
    return [request for name, request in engine.calls if name == operation][-1]


def test_start_prints_the_execution_id_and_passes_variables(
    caravan: Caravan, engine: FakeEngine
) -> None:
    result = caravan("start", "demo", "--var", "env=prod", "--var", "note=a=b")
    assert result.exit_code == 0
    newest = engine.executions["demo"][0]["pipelineExecutionId"]
    assert result.output == f"{newest}\n"
    assert last_call(engine, "StartPipelineExecution") == {
        "name": "demo",
        "variables": [{"name": "env", "value": "prod"}, {"name": "note", "value": "a=b"}],
    }


def test_malformed_variable_is_a_usage_error(caravan: Caravan, engine: FakeEngine) -> None:
    result = caravan("start", "demo", "--var", "novalue")
    assert result.exit_code == 2
    assert "'novalue' is not NAME=VALUE" in result.stderr
    assert engine.calls == []


def test_stop_takes_the_newest_execution_in_progress(caravan: Caravan, engine: FakeEngine) -> None:
    running = engine.add_execution("demo", status="InProgress")
    engine.add_execution("demo", status="Succeeded")
    result = caravan("stop", "demo", "--reason", "wrong branch")
    assert result.exit_code == 0
    assert result.output == f"stopping execution {running} (letting running actions finish)\n"
    assert last_call(engine, "StopPipelineExecution") == {
        "pipelineName": "demo",
        "pipelineExecutionId": running,
        "abandon": False,
        "reason": "wrong branch",
    }
    assert engine.execution("demo", running)["status"] == "Stopping"


def test_stop_abandon_also_takes_a_stopping_execution(caravan: Caravan, engine: FakeEngine) -> None:
    stopping = engine.add_execution("demo", status="Stopping")
    result = caravan("stop", "demo", "--abandon")
    assert result.exit_code == 0
    assert last_call(engine, "StopPipelineExecution")["pipelineExecutionId"] == stopping
    assert last_call(engine, "StopPipelineExecution")["abandon"] is True


def test_stop_with_nothing_running_is_exit_1(caravan: Caravan, engine: FakeEngine) -> None:
    done = engine.add_execution("demo", status="Succeeded")
    nothing = caravan("stop", "demo")
    assert nothing.exit_code == 1
    assert nothing.stderr == "caravan: error: pipeline 'demo' has no execution in progress\n"
    conflict = caravan("stop", "demo", "--execution", done)
    assert conflict.exit_code == 1  # PipelineExecutionNotStoppable: a conflict, from the server
    assert conflict.stderr == f"caravan: error: execution {done} is Succeeded\n"


def test_retry_defaults_to_the_stage_latest_execution_and_failed_actions(
    caravan: Caravan, engine: FakeEngine
) -> None:
    failed = engine.add_execution("demo", status="Failed")
    engine.add_action("demo", failed, "Build", "Compile", status="Failed", error="boom")
    engine.add_execution("demo", status="InProgress")  # newer, but not in Build
    result = caravan("retry", "demo", "Build")
    assert result.exit_code == 0, result.output
    assert result.output == f"retrying stage Build of execution {failed} (FAILED_ACTIONS)\n"
    assert last_call(engine, "RetryStageExecution") == {
        "pipelineName": "demo",
        "stageName": "Build",
        "pipelineExecutionId": failed,
        "retryMode": "FAILED_ACTIONS",
    }


def test_retry_all_actions_of_a_named_execution(caravan: Caravan, engine: FakeEngine) -> None:
    failed = engine.add_execution("demo", status="Failed")
    engine.add_action("demo", failed, "Build", "Compile", status="Failed")
    result = caravan("retry", "demo", "Build", "--execution", failed[:8], "--all-actions")
    assert result.exit_code == 0
    assert last_call(engine, "RetryStageExecution")["retryMode"] == "ALL_ACTIONS"
    assert last_call(engine, "RetryStageExecution")["pipelineExecutionId"] == failed


def test_retry_errors(caravan: Caravan, engine: FakeEngine) -> None:
    unknown = caravan("retry", "demo", "Nope")
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        "caravan: error: pipeline 'demo' has no stage 'Nope' (stages: Source, Build, Deploy)\n"
    )
    never = caravan("retry", "demo", "Deploy")
    assert never.exit_code == 1
    assert "has not run yet" in never.stderr
    fine = engine.add_execution("demo", status="Succeeded")
    engine.add_action("demo", fine, "Build", "Compile")
    not_retryable = caravan("retry", "demo", "Build")
    assert not_retryable.exit_code == 1
    assert "no failed actions" in not_retryable.stderr


def test_approve_and_reject_use_the_token_of_the_waiting_action(
    caravan: Caravan, engine: FakeEngine
) -> None:
    execution = engine.add_execution("demo")
    first = engine.add_action(
        "demo", execution, "Deploy", "Approve", status="InProgress", token="t-1"
    )
    result = caravan("approve", "demo", "Deploy", "Approve", "--summary", "looks good")
    assert result.exit_code == 0
    assert result.output == "approved demo/Deploy/Approve\n"
    assert last_call(engine, "PutApprovalResult") == {
        "pipelineName": "demo",
        "stageName": "Deploy",
        "actionName": "Approve",
        "result": {"summary": "looks good", "status": "Approved"},
        "token": "t-1",
    }
    assert engine._detail(first)["status"] == "Succeeded"

    second = engine.add_execution("demo")
    engine.add_action("demo", second, "Deploy", "Approve", status="InProgress", token="t-2")
    rejected = caravan("reject", "demo", "Deploy", "Approve")
    assert rejected.exit_code == 0
    request = last_call(engine, "PutApprovalResult")
    assert request["token"] == "t-2"
    assert request["result"] == {"summary": "rejected with the caravan CLI", "status": "Rejected"}


def test_approve_when_nothing_waits_is_exit_1(caravan: Caravan, engine: FakeEngine) -> None:
    result = caravan("approve", "demo", "Deploy", "Approve")
    assert result.exit_code == 1
    assert result.stderr == (
        "caravan: error: action 'Approve' in stage 'Deploy' of pipeline 'demo' is not waiting "
        "for approval (its latest status: not run)\n"
    )
    missing = caravan("approve", "demo", "Deploy", "Nope")
    assert missing.exit_code == 2
    assert "has no action 'Nope'" in missing.stderr
    assert not [name for name, _ in engine.calls if name == "PutApprovalResult"]


def test_transition_disable_and_enable_show_on_the_board(
    caravan: Caravan, engine: FakeEngine
) -> None:
    disabled = caravan("transition", "disable", "demo", "Deploy", "--reason", "release freeze")
    assert disabled.exit_code == 0
    assert last_call(engine, "DisableStageTransition") == {
        "pipelineName": "demo",
        "stageName": "Deploy",
        "transitionType": "Inbound",
        "reason": "release freeze",
    }
    assert "transition disabled: release freeze" in caravan("status", "demo").output
    assert caravan("transition", "enable", "demo", "Deploy").exit_code == 0
    assert "transition disabled" not in caravan("status", "demo").output


def test_usage_errors_are_exit_2(caravan: Caravan, engine: FakeEngine) -> None:
    no_reason = caravan("transition", "disable", "demo", "Deploy")
    assert no_reason.exit_code == 2
    assert "Missing option '--reason'" in no_reason.stderr
    assert caravan("frobnicate").exit_code == 2
    assert caravan("status").exit_code == 2
    assert engine.calls == []


def test_unreachable_server_is_exit_1_with_how_to_start_one(caravan: Caravan) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = caravan("status", "demo", url=url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"caravan: error: cannot reach the caravan server at {url} — start one with "
        "`caravan server`\n"
    )


def test_server_failure_is_one_line_without_traceback(caravan: Caravan, engine: FakeEngine) -> None:
    engine.explode = RuntimeError("disk on fire")
    result = caravan("status", "demo", debug=False)
    assert result.exit_code == 1
    assert re.fullmatch(r"caravan: error: internal error in the caravan server .*\n", result.stderr)
    assert "Traceback" not in result.output
