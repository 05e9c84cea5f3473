"""Commands that change what runs: ``start``, ``stop``, ``retry``, ``approve``, ``reject`` and
``transition disable|enable``.

Each finds what the API needs from the current state when the user leaves it out, the way the
console's buttons do: ``stop`` takes the newest execution in progress, ``retry`` the stage's
latest execution, ``approve``/``reject`` the token of the action waiting for approval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from caravan.cli.client import Client, run_with_client
from caravan.cli.commands.executions import list_executions, resolve_execution
from caravan.cli.main import Settings
from caravan.errors import (
    ActionNotFoundError,
    InvalidApprovalTokenError,
    PipelineExecutionNotStoppableError,
    StageNotFoundError,
    StageNotRetryableError,
)


def parse_variables(
    ctx: click.Context | None, param: click.Parameter | None, values: tuple[str, ...]
) -> list[dict[str, str]]:
    """``--var NAME=VALUE`` options as StartPipelineExecution ``variables``."""
    variables = []
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", ctx=ctx, param=param)
        variables.append({"name": name.strip(), "value": text})
    return variables


variables_option = click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    callback=parse_variables,
    help="A pipeline variable for this execution (repeatable).",
)


@click.command()
@click.argument("name")
@variables_option
@click.pass_obj
def start(settings: Settings, name: str, variables: list[dict[str, str]]) -> None:
    """Start an execution of a pipeline; prints its id."""
    request: dict[str, Any] = {"name": name}
    if variables:
        request["variables"] = variables
    answer = run_with_client(settings, lambda c: c.call("StartPipelineExecution", request))
    click.echo(answer["pipelineExecutionId"])


async def newest_running(client: Client, name: str, *, abandon: bool) -> str:
    # Abandoning is also how one hurries an execution that is already Stopping.
    stoppable = ("InProgress", "Stopping") if abandon else ("InProgress",)
    for summary in await list_executions(client, name):
        if summary.get("status") in stoppable:
            execution_id: str = summary["pipelineExecutionId"]
            return execution_id
    raise PipelineExecutionNotStoppableError(f"pipeline {name!r} has no execution in progress")


@click.command()
@click.argument("name")
@click.option("--execution", "execution_id", metavar="ID", help="Default: the newest in progress.")
@click.option("--abandon", is_flag=True, help="Abandon running actions instead of waiting.")
@click.option("--reason", help="Why (shown with the stopped execution).")
@click.pass_obj
def stop(
    settings: Settings, name: str, execution_id: str | None, abandon: bool, reason: str | None
) -> None:
    """Stop an execution: let running actions finish, or abandon them."""

    async def work(client: Client) -> str:
        if execution_id:
            target = await resolve_execution(client, name, execution_id)
        else:
            target = await newest_running(client, name, abandon=abandon)
        request: dict[str, Any] = {
            "pipelineName": name,
            "pipelineExecutionId": target,
            "abandon": abandon,
        }
        if reason:
            request["reason"] = reason
        await client.call("StopPipelineExecution", request)
        return target

    target = run_with_client(settings, work)
    how = "abandoning its running actions" if abandon else "letting running actions finish"
    click.echo(f"stopping execution {target} ({how})")


def find_stage(state: Mapping[str, Any], name: str, stage: str) -> dict[str, Any]:
    stages: list[dict[str, Any]] = state.get("stageStates", [])
    for found in stages:
        if found.get("stageName") == stage:
            return found
    known = ", ".join(s.get("stageName", "") for s in stages)
    raise StageNotFoundError(f"pipeline {name!r} has no stage {stage!r} (stages: {known})")


@click.command()
@click.argument("name")
@click.argument("stage")
@click.option("--execution", "execution_id", metavar="ID", help="Default: the stage's latest.")
@click.option("--all-actions", is_flag=True, help="Retry every action, not only the failed ones.")
@click.pass_obj
def retry(
    settings: Settings, name: str, stage: str, execution_id: str | None, all_actions: bool
) -> None:
    """Retry a failed stage of an execution."""
    mode = "ALL_ACTIONS" if all_actions else "FAILED_ACTIONS"

    async def work(client: Client) -> str:
        state = await client.call("GetPipelineState", {"name": name})
        latest = find_stage(state, name, stage).get("latestExecution") or {}
        if execution_id:
            target = await resolve_execution(client, name, execution_id)
        elif latest.get("pipelineExecutionId"):
            target = latest["pipelineExecutionId"]
        else:
            raise StageNotRetryableError(f"stage {stage!r} of pipeline {name!r} has not run yet")
        request = {
            "pipelineName": name,
            "stageName": stage,
            "pipelineExecutionId": target,
            "retryMode": mode,
        }
        answer = await client.call("RetryStageExecution", request)
        retried: str = answer.get("pipelineExecutionId", target)
        return retried

    target = run_with_client(settings, work)
    click.echo(f"retrying stage {stage} of execution {target} ({mode})")


async def approval_token(client: Client, name: str, stage: str, action: str) -> str:
    """The token of ``action`` waiting for approval: in GetPipelineState, or (PARALLEL mode,
    where the state has none) the externalExecutionId of its running action execution."""
    state = await client.call("GetPipelineState", {"name": name})
    actions = find_stage(state, name, stage).get("actionStates", [])
    found = next((a for a in actions if a.get("actionName") == action), None)
    if found is None:
        raise ActionNotFoundError(f"stage {stage!r} of pipeline {name!r} has no action {action!r}")
    latest = found.get("latestExecution") or {}
    if latest.get("token"):
        token: str = latest["token"]
        return token
    declared = (await client.call("GetPipeline", {"name": name})).get("pipeline", {})
    if declared.get("executionMode") == "PARALLEL":
        listed = await client.call("ListActionExecutions", {"pipelineName": name})
        for detail in listed.get("actionExecutionDetails", []):
            result = (detail.get("output") or {}).get("executionResult") or {}
            if (
                (detail.get("stageName"), detail.get("actionName")) == (stage, action)
                and detail.get("status") == "InProgress"
                and result.get("externalExecutionId")
            ):
                parallel_token: str = result["externalExecutionId"]
                return parallel_token
    status = latest.get("status", "not run")
    raise InvalidApprovalTokenError(
        f"action {action!r} in stage {stage!r} of pipeline {name!r} is not waiting for "
        f"approval (its latest status: {status})"
    )


def _decide(
    settings: Settings, name: str, stage: str, action: str, status: str, summary: str
) -> None:
    async def work(client: Client) -> None:
        token = await approval_token(client, name, stage, action)
        request = {
            "pipelineName": name,
            "stageName": stage,
            "actionName": action,
            "result": {"summary": summary, "status": status},
            "token": token,
        }
        await client.call("PutApprovalResult", request)

    run_with_client(settings, work)
    click.echo(f"{status.lower()} {name}/{stage}/{action}")


@click.command()
@click.argument("name")
@click.argument("stage")
@click.argument("action")
@click.option("--summary", default="approved with the caravan CLI", show_default=True)
@click.pass_obj
def approve(settings: Settings, name: str, stage: str, action: str, summary: str) -> None:
    """Approve a manual approval action."""
    _decide(settings, name, stage, action, "Approved", summary)


@click.command()
@click.argument("name")
@click.argument("stage")
@click.argument("action")
@click.option("--summary", default="rejected with the caravan CLI", show_default=True)
@click.pass_obj
def reject(settings: Settings, name: str, stage: str, action: str, summary: str) -> None:
    """Reject a manual approval action (its stage fails)."""
    _decide(settings, name, stage, action, "Rejected", summary)


@click.group()
def transition() -> None:
    """Disable or enable the inbound transition of a stage."""


@transition.command()
@click.argument("name")
@click.argument("stage")
@click.option("--reason", required=True, help="Why; shown on the board while disabled.")
@click.pass_obj
def disable(settings: Settings, name: str, stage: str, reason: str) -> None:
    """Stop executions from entering STAGE (they wait in front of it)."""
    request = {
        "pipelineName": name,
        "stageName": stage,
        "transitionType": "Inbound",
        "reason": reason,
    }
    run_with_client(settings, lambda c: c.call("DisableStageTransition", request))
    click.echo(f"disabled the transition into {name}/{stage}: {reason}")


@transition.command()
@click.argument("name")
@click.argument("stage")
@click.pass_obj
def enable(settings: Settings, name: str, stage: str) -> None:
    """Let executions enter STAGE again (the latest waiting one goes first)."""
    request = {"pipelineName": name, "stageName": stage, "transitionType": "Inbound"}
    run_with_client(settings, lambda c: c.call("EnableStageTransition", request))
    click.echo(f"enabled the transition into {name}/{stage}")
