"""The buttons: form posts that call the engine's operations.

    POST /pipelines/{name}/start       StartPipelineExecution (fields var.NAME)
    POST /pipelines/{name}/stop        StopPipelineExecution (execution, mode stop|abandon, reason)
    POST /pipelines/{name}/retry       RetryStageExecution (stage, execution, mode)
    POST /pipelines/{name}/approval    PutApprovalResult (stage, action, approval_token,
                                       decision Approved|Rejected, summary)
    POST /pipelines/{name}/transition  Disable/EnableStageTransition (stage, change, reason)

Forms are urlencoded and must carry their token (security.py). A browser running the page's
script sends ``X-Caravan-Dashboard: fetch`` and gets JSON: ``{"ok", "message", "fragments"}``,
the pipeline page's fragments as they are after the change (or the error's payload). Without
script, success redirects to the pipeline page (303) and an error is a page with its message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from caravan.engine.api import EngineAPI
from caravan.errors import CaravanError, InvalidInputError
from caravan.server.dashboard.fragments import View
from caravan.server.dashboard.render import form_url, pipeline_url
from caravan.server.dashboard.security import TOKEN_FIELD
from caravan.server.dashboard.state import Dashboard, internal_error
from caravan.server.native import RequestTooLargeError, json_response

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
FETCH_HEADER = "x-caravan-dashboard"

Fields = Mapping[str, str]
Act = Callable[[EngineAPI, str, Fields], Awaitable[str]]


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict (the first value of each field)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidInputError(
            f"a dashboard form must be application/x-www-form-urlencoded, got {content_type!r}"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise RequestTooLargeError(f"form of {declared} bytes exceeds {MAX_FORM_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise RequestTooLargeError(f"form exceeds {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
    try:
        body = b"".join(chunks).decode("utf-8")
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise InvalidInputError("the form is not UTF-8") from None
    except ValueError:
        raise InvalidInputError(f"the form has more than {MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def required(fields: Fields, name: str, form: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise InvalidInputError(f"the {form} form needs the field {name!r}")
    return value


def one_of(fields: Fields, name: str, form: str, allowed: tuple[str, ...]) -> str:
    value = required(fields, name, form)
    if value not in allowed:
        raise InvalidInputError(
            f"the {form} form's field {name!r} must be one of {', '.join(allowed)}, got {value!r}"
        )
    return value


# What each button does ------------------------------------------------------------------------
async def _start(engine: EngineAPI, name: str, fields: Fields) -> str:
    request: dict[str, Any] = {"name": name}
    variables = [
        {"name": key.removeprefix("var."), "value": value}
        for key, value in fields.items()
        if key.startswith("var.") and value != ""
    ]
    if variables:
        request["variables"] = variables
    answer = await engine.call("StartPipelineExecution", request)
    return f"Started execution {answer['pipelineExecutionId']}"


async def _stop(engine: EngineAPI, name: str, fields: Fields) -> str:
    execution = required(fields, "execution", "stop")
    mode = one_of(fields, "mode", "stop", ("stop", "abandon"))
    request: dict[str, Any] = {
        "pipelineName": name,
        "pipelineExecutionId": execution,
        "abandon": mode == "abandon",
    }
    reason = fields.get("reason", "").strip()
    if reason:
        request["reason"] = reason
    await engine.call("StopPipelineExecution", request)
    how = (
        "abandoning its running actions" if mode == "abandon" else "letting running actions finish"
    )
    return f"Stopping execution {execution} ({how})"


async def _retry(engine: EngineAPI, name: str, fields: Fields) -> str:
    stage = required(fields, "stage", "retry")
    mode = one_of(fields, "mode", "retry", ("FAILED_ACTIONS", "ALL_ACTIONS"))
    request = {
        "pipelineName": name,
        "stageName": stage,
        "pipelineExecutionId": required(fields, "execution", "retry"),
        "retryMode": mode,
    }
    answer = await engine.call("RetryStageExecution", request)
    which = "failed actions" if mode == "FAILED_ACTIONS" else "all actions"
    return f"Retrying {which} of stage {stage} in execution {answer.get('pipelineExecutionId')}"


async def _approval(engine: EngineAPI, name: str, fields: Fields) -> str:
    stage = required(fields, "stage", "approval")
    action = required(fields, "action", "approval")
    decision = one_of(fields, "decision", "approval", ("Approved", "Rejected"))
    request = {
        "pipelineName": name,
        "stageName": stage,
        "actionName": action,
        "token": required(fields, "approval_token", "approval"),
        "result": {"status": decision, "summary": fields.get("summary", "").strip()},
    }
    await engine.call("PutApprovalResult", request)
    return f"{decision} {stage}/{action}"


async def _transition(engine: EngineAPI, name: str, fields: Fields) -> str:
    stage = required(fields, "stage", "transition")
    change = one_of(fields, "change", "transition", ("disable", "enable"))
    request = {"pipelineName": name, "stageName": stage, "transitionType": "Inbound"}
    if change == "enable":
        await engine.call("EnableStageTransition", request)
        return f"Enabled the transition into {stage}"
    reason = required(fields, "reason", "disable transition")
    await engine.call("DisableStageTransition", {**request, "reason": reason})
    return f"Disabled the transition into {stage}: {reason}"


ACTS: dict[str, Act] = {
    "start": _start,
    "stop": _stop,
    "retry": _retry,
    "approval": _approval,
    "transition": _transition,
}


# The response ---------------------------------------------------------------------------------
async def submit(dashboard: Dashboard, verb: str, request: Request) -> Response:
    """Check and run the ``verb`` form posted to the pipeline in the path; answer the way the
    caller wants (JSON with fragments for the page's script, else a redirect or error page)."""
    name = request.path_params["name"]
    wants_json = request.headers.get(FETCH_HEADER) == "fetch"
    try:
        fields = await read_form(request)
        dashboard.guard.check(form_url(name, verb), fields.get(TOKEN_FIELD), request.headers)
        message = await ACTS[verb](dashboard.engine(request), name, fields)
    except CaravanError as error:
        return _failed(dashboard, error, name, wants_json)
    except Exception:
        return _failed(dashboard, internal_error(f"form {verb} of {name}"), name, wants_json)
    if not wants_json:
        return RedirectResponse(pipeline_url(name), status_code=303)
    try:
        fragments = await dashboard.fragments.of(
            View("pipeline", name), dashboard.engine(request), None
        )
    except CaravanError:
        fragments = []  # the change happened; the live stream brings the page up to date
    body = {"ok": True, "message": message, "fragments": [f.message() for f in fragments]}
    return json_response(body)


def _failed(dashboard: Dashboard, error: CaravanError, name: str, wants_json: bool) -> Response:
    if wants_json:
        return json_response({"ok": False, **error.to_dict()}, error.http_status)
    return dashboard.error_page(error, back=pipeline_url(name))
