"""watch (live board driven by the event stream) and logs (whole or followed)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable

from click.testing import Result
from fake_engine import FakeEngine, declaration
from rich.console import Console

from caravan.cli.commands.watch import follow_execution

Caravan = Callable[..., Result]


def finish(execution_id: str, action_id: str, status: str) -> Callable[[FakeEngine], object]:
    """A script for the fake engine: once watched, the action and execution end."""

    async def script(engine: FakeEngine) -> None:
        await asyncio.sleep(0.05)
        engine.set_action(
            action_id, status, **({"error": "tests failed"} if status == "Failed" else {})
        )
        engine.publish(
            {
                "type": "action",
                "pipeline": "demo",
                "pipelineExecutionId": execution_id,
                "stage": "Build",
                "action": "Compile",
                "status": status,
            }
        )
        await asyncio.sleep(0.05)
        engine.set_stage("demo", execution_id, "Build", status)
        engine.set_status("demo", execution_id, status)
        engine.publish(
            {
                "type": "execution",
                "pipeline": "demo",
                "pipelineExecutionId": execution_id,
                "status": status,
            }
        )

    return script


def test_watch_follows_events_until_success_and_exits_0(
    caravan: Caravan, engine: FakeEngine
) -> None:
    execution = engine.add_execution("demo")
    action = engine.add_action("demo", execution, "Build", "Compile", status="InProgress")
    engine.on_subscribe = finish(execution, action, "Succeeded")
    result = caravan("watch", "demo")
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(rf"Build/Compile Succeeded  execution {execution[:8]}", out)
    assert re.search(r"^\s+1  Compile\s+Succeeded", out, re.M)  # the final board
    assert out.rstrip().endswith(f"execution {execution} Succeeded")


def test_watch_exits_1_when_the_execution_fails(caravan: Caravan, engine: FakeEngine) -> None:
    execution = engine.add_execution("demo")
    action = engine.add_action("demo", execution, "Build", "Compile", status="InProgress")
    engine.add_execution("demo", status="Succeeded")  # newer: --execution picks the older one
    engine.on_subscribe = finish(execution, action, "Failed")
    result = caravan("watch", "demo", "--execution", execution[:8])
    assert result.exit_code == 1
    assert re.search(r"^\s+1  Compile\s+Failed\s+\S+  tests failed$", result.output, re.M)
    assert result.output.rstrip().endswith(f"execution {execution} Failed")


def test_watch_of_an_ended_execution_prints_the_board_and_returns(
    caravan: Caravan, engine: FakeEngine
) -> None:
    stopped = engine.add_execution("demo", status="Stopped")
    result = caravan("watch", "demo")
    assert result.exit_code == 1
    assert result.output.startswith("demo  version 1")
    assert result.output.rstrip().endswith(f"execution {stopped} Stopped")


def test_watch_without_executions_says_how_to_start(caravan: Caravan) -> None:
    result = caravan("watch", "demo")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "caravan: error: pipeline 'demo' has no executions yet",
        "hint: start one: caravan start demo",
    ]


def test_logs_prints_the_latest_action_of_the_latest_execution(
    caravan: Caravan, engine: FakeEngine
) -> None:
    older = engine.add_execution("demo")
    engine.add_action("demo", older, "Build", "Compile", log="old log\n")
    latest = engine.add_execution("demo")
    engine.add_action("demo", latest, "Source", "Checkout", log="cloned\n", started=100)
    engine.add_action("demo", latest, "Build", "Compile", log="compiled\nok\n", started=200)
    result = caravan("logs", "demo")
    assert result.exit_code == 0
    assert result.stdout == "compiled\nok\n"
    assert result.stderr == f"== Build/Compile (Succeeded) of execution {latest[:8]}\n"
    chosen = caravan("logs", "demo", "--stage", "Source")
    assert chosen.stdout == "cloned\n"
    earlier = caravan("logs", "demo", "--execution", older, "--action", "Compile")
    assert earlier.stdout == "old log\n"


def test_logs_follow_streams_until_the_action_ends(caravan: Caravan, engine: FakeEngine) -> None:
    execution = engine.add_execution("demo")
    engine.add_action(
        "demo",
        execution,
        "Build",
        "Compile",
        status="InProgress",
        log="step 1\n",
        log_pending=["step 2\n", "step 3\n", "done\n"],
    )
    result = caravan("logs", "demo", "--follow")
    assert result.exit_code == 0
    assert result.stdout == "step 1\nstep 2\nstep 3\ndone\n"
    without_follow = caravan("logs", "demo")
    assert without_follow.stdout == "step 1\nstep 2\nstep 3\ndone\n"


def test_logs_for_nothing_matching_is_exit_2(caravan: Caravan, engine: FakeEngine) -> None:
    execution = engine.add_execution("demo")
    engine.add_action("demo", execution, "Build", "Compile")
    result = caravan("logs", "demo", "--stage", "Deploy")
    assert result.exit_code == 2
    assert result.stderr == (
        f"caravan: error: execution {execution[:8]} of pipeline 'demo' has no action execution "
        "for Deploy\n"
    )


async def test_live_board_on_a_terminal_ends_with_the_final_board() -> None:
    """On a terminal the board is drawn in place (rich Live) and left on screen at the end."""
    engine = FakeEngine()
    engine.add_pipeline(declaration("demo", {"Source": ["Checkout"], "Build": ["Compile"]}))
    execution = engine.add_execution("demo")
    action = engine.add_action("demo", execution, "Build", "Compile", status="InProgress")
    engine.on_subscribe = finish(execution, action, "Succeeded")
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    status = await asyncio.wait_for(follow_execution(engine, "demo", execution, console), 10)
    assert status == "Succeeded"
    assert re.search(r"1  Compile\s+Succeeded", screen.getvalue())
    assert engine.subscribers == []  # the subscription was closed
