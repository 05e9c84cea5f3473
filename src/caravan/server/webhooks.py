"""The routes through which git changes reach caravan (no polling anywhere):

    POST /webhooks/github         GitHub-format ``push`` and ``pull_request`` deliveries,
                                  authenticated by ``X-Hub-Signature-256`` (HMAC-SHA256 of the
                                  raw body with the ``webhook_secret`` setting)
    POST /api/hooks/git           what ``caravan.hooks.notify`` posts from a local git hook;
                                  accepted from loopback only
    GET  /api/webhooks/deliveries the last 100 deliveries of both, accepted and rejected (time,
                                  event, delivery id, outcome, reason; never a body)

Each turns its payload into a ``GitEvent`` and hands it to ``server.triggers.dispatch``.
``mount(app, settings)`` adds the routes to an application; without ``settings`` they come from
the environment (``CARAVAN_WEBHOOK_SECRET``, ``CARAVAN_GIT_REPOSITORIES``,
``CARAVAN_GIT_URL_TEMPLATE``). Without a secret every GitHub delivery is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from caravan.engine.settings import EngineSettings
from caravan.errors import CaravanError, InvalidInputError
from caravan.model.triggers import NULL_COMMIT, GitEvent, PullRequestAction
from caravan.server.native import RequestTooLargeError, engine_of, internal_error, json_response
from caravan.server.triggers import DispatchResult, RepositoryRef, dispatch

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024
MAX_HOOK_BYTES = 64 * 1024 * 1024  # a local push may change a great many files
KEPT_DELIVERIES = 100
# GitHub lists at most this many commits in a push payload; beyond, its file lists are partial.
GITHUB_MAX_COMMITS = 2048
UNCONFIGURED = (
    "no webhook secret is configured, so every delivery is refused: start the server with "
    "CARAVAN_WEBHOOK_SECRET=<secret> and give GitHub the same secret in the webhook's settings "
    "(content type application/json)"
)
_PR_ACTIONS: dict[str, PullRequestAction] = {
    "opened": "OPEN",
    "synchronize": "UPDATED",
    "reopened": "UPDATED",
    "edited": "UPDATED",
    "closed": "CLOSED",
}


class Rejected(CaravanError):
    """A delivery refused before it reached the engine; ``http_status`` says why."""

    reference = "webhook-rejected"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status


@dataclass
class TriggerState:
    settings: Mapping[str, Any]
    deliveries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEPT_DELIVERIES))

    def record(
        self,
        source: str,
        event: str,
        delivery: str | None,
        outcome: str,
        reason: str,
        executions: list[str] | None = None,
    ) -> None:
        self.deliveries.append(
            {
                "time": time.time(),
                "source": source,
                "event": event,
                "deliveryId": delivery,
                "outcome": outcome,
                "reason": reason,
                "pipelineExecutionIds": executions or [],
            }
        )


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The trigger settings the server's environment gives: ``CARAVAN_WEBHOOK_SECRET``, and
    the engine's ``git_repositories`` and ``git_url_template`` read as the engine reads them
    (InvalidInputError names a bad value)."""
    env = os.environ if environ is None else environ
    engine = EngineSettings.resolve(None, env)
    return {
        "webhook_secret": env.get("CARAVAN_WEBHOOK_SECRET") or None,
        "git_repositories": dict(engine.git_repositories),
        "git_url_template": engine.git_url_template,
    }


def mount(app: Starlette, settings: Mapping[str, Any] | None = None) -> None:
    """Serve the trigger routes from ``app``, with ``settings`` (default: the environment)."""
    app.state.triggers = TriggerState(settings_from_env() if settings is None else settings)
    app.router.routes.extend(r for r in routes if r not in app.router.routes)


def state_of(request: Request) -> TriggerState:
    state: TriggerState | None = getattr(request.app.state, "triggers", None)
    if state is None:  # routes included without mount(): configure from the environment
        state = request.app.state.triggers = TriggerState(settings_from_env())
    return state


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"{what} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{what} must be a JSON object")
    return data


def _message(status: int, message: str, **extra: Any) -> Response:
    return json_response({"message": message, **extra}, status)


def _outcome(result: DispatchResult) -> tuple[str, dict[str, Any]]:
    started = [
        {"pipelineName": s.pipeline, "pipelineExecutionId": s.execution_id} for s in result.started
    ]
    failures = [{"pipelineName": name, "message": text} for name, text in result.failures]
    names = ", ".join(s.pipeline for s in result.started)
    summary = f"started {names}" if names else "no pipeline is triggered by this change"
    if failures:
        summary += "; failed to start " + ", ".join(f["pipelineName"] for f in failures)
    return summary, {"pipelineExecutions": started, "failures": failures}


# GitHub ------------------------------------------------------------------------------------


def verify_signature(secret: str | None, body: bytes, header: str | None) -> None:
    """Raise Rejected (401) unless ``header`` is the HMAC-SHA256 of ``body`` under ``secret``."""
    if not secret:
        raise Rejected(UNCONFIGURED, 401)
    if not header:
        raise Rejected("the X-Hub-Signature-256 header is missing: the delivery is unsigned", 401)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), header.strip().encode("latin-1")):
        raise Rejected(
            "X-Hub-Signature-256 does not match the body signed with the configured secret", 401
        )


async def github_webhook(request: Request) -> Response:
    state = state_of(request)
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery")
    try:
        body = await read_body(request, MAX_WEBHOOK_BYTES)
        verify_signature(
            state.settings.get("webhook_secret"), body, request.headers.get("x-hub-signature-256")
        )
        status, message, extra = await _github_event(request, state, event, body)
    except (Rejected, InvalidInputError) as error:
        state.record("github", event, delivery, "rejected", error.message)
        return _message(error.http_status, error.message)
    except Exception:
        failure = internal_error(f"webhook delivery {delivery}")
        state.record("github", event, delivery, "rejected", failure.message)
        return _message(500, failure.message)
    ids = [e["pipelineExecutionId"] for e in extra.get("pipelineExecutions", [])]
    state.record("github", event, delivery, "accepted", message, ids)
    return _message(status, message, **extra)


async def _github_event(
    request: Request, state: TriggerState, event: str, body: bytes
) -> tuple[int, str, dict[str, Any]]:
    if event == "ping":
        return 200, "pong", {}
    if event not in ("push", "pull_request"):
        return 202, f"event {event or '(none)'!r} is not used by caravan; ignored", {}
    payload = _json_object(body, f"the {event} payload")
    repository = _github_repository(payload)
    git_event = _push_event(payload) if event == "push" else _pull_request_event(payload)
    if git_event is None:
        return 202, f"{event} with nothing to run (a deletion, or an unused action); ignored", {}
    result = await dispatch(engine_of(request), repository, git_event, settings=state.settings)
    summary, extra = _outcome(result)
    return 200, summary, extra


def _field(payload: Mapping[str, Any], path: str, kind: type, *, required: bool = True) -> Any:
    value: Any = payload
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        noun = {"str": "string", "dict": "object"}.get(kind.__name__, kind.__name__)
        raise InvalidInputError(f"payload field {path} must be a {noun}")
    return value


def _github_repository(payload: Mapping[str, Any]) -> RepositoryRef:
    urls = ("clone_url", "html_url", "ssh_url", "git_url", "url")
    found = (_field(payload, f"repository.{key}", str, required=False) for key in urls)
    locations = tuple(url for url in found if url)
    full_name = _field(payload, "repository.full_name", str)
    return RepositoryRef(locations, full_name)


def _push_event(payload: Mapping[str, Any]) -> GitEvent | None:
    ref = _field(payload, "ref", str)
    after = _field(payload, "after", str)
    if payload.get("deleted") is True or after == NULL_COMMIT:
        return None
    branch, tag = _split_ref(ref)
    if branch is None and tag is None:
        return None
    return GitEvent(
        kind="push",
        branch=branch,
        tag=tag,
        changed_files=_push_files(payload),
        pr_action=None,
        commit=after,
        created_branch=payload.get("created") is True,
        default_branch=_field(payload, "repository.default_branch", str, required=False),
    )


def _push_files(payload: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The union of the commits' added, modified and removed files; None when unknown."""
    commits = payload.get("commits")
    if not isinstance(commits, list) or len(commits) >= GITHUB_MAX_COMMITS:
        return None
    if not commits and payload.get("created") is True:
        return None  # a branch or tag made at an existing commit: GitHub lists nothing
    files: dict[str, None] = {}
    for commit in commits:
        for key in ("added", "modified", "removed"):
            listed = commit.get(key) if isinstance(commit, Mapping) else None
            for path in listed if isinstance(listed, list) else ():
                if isinstance(path, str):
                    files[path] = None
    return tuple(files)


def _pull_request_event(payload: Mapping[str, Any]) -> GitEvent | None:
    action = _PR_ACTIONS.get(_field(payload, "action", str))
    if action is None:
        return None
    return GitEvent(
        kind="pull_request",
        branch=_field(payload, "pull_request.base.ref", str),
        tag=None,
        changed_files=None,  # the payload does not list them: file filters match
        pr_action=action,
        commit=_field(payload, "pull_request.head.sha", str),
        default_branch=_field(payload, "repository.default_branch", str, required=False),
    )


def _split_ref(ref: str) -> tuple[str | None, str | None]:
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/"), None
    if ref.startswith("refs/tags/"):
        return None, ref.removeprefix("refs/tags/")
    return None, None


# Local git hooks ---------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.removeprefix("::ffff:")
    return host in ("::1", "localhost") or host.startswith("127.")


async def git_hook(request: Request) -> Response:
    state = state_of(request)
    client = request.client.host if request.client else None
    if not is_loopback(client):
        reason = f"git hook notifications are accepted from loopback only, not from {client}"
        state.record("git-hook", "push", None, "rejected", reason)
        return _message(403, reason)
    try:
        payload = _json_object(await read_body(request, MAX_HOOK_BYTES), "the hook payload")
        repository, event = hook_event(payload)
        if event is None:
            summary = "nothing to run (a deletion, or not a branch or tag)"
            extra: dict[str, Any] = {}
        else:
            result = await dispatch(engine_of(request), repository, event, settings=state.settings)
            summary, extra = _outcome(result)
    except InvalidInputError as error:
        state.record("git-hook", "push", None, "rejected", error.message)
        return _message(error.http_status, error.message)
    except Exception:
        failure = internal_error("git hook notification")
        state.record("git-hook", "push", None, "rejected", failure.message)
        return _message(500, failure.message)
    ids = [e["pipelineExecutionId"] for e in extra.get("pipelineExecutions", [])]
    state.record("git-hook", "push", None, "accepted", summary, ids)
    return _message(200, summary, **extra)


def hook_event(payload: Mapping[str, Any]) -> tuple[str, GitEvent | None]:
    """The repository and event of a ``caravan.hooks.notify`` payload:
    ``{repository, ref, before, after, changedFiles, createdBranch}``."""
    repository = _field(payload, "repository", str)
    if not Path(repository).is_absolute():
        raise InvalidInputError(f"repository must be an absolute path, got {repository!r}")
    ref, after = _field(payload, "ref", str), _field(payload, "after", str)
    changed = payload.get("changedFiles")
    if changed is not None and not (
        isinstance(changed, list) and all(isinstance(p, str) for p in changed)
    ):
        raise InvalidInputError("changedFiles must be a list of paths, or null when unknown")
    branch, tag = _split_ref(ref)
    if after == NULL_COMMIT or (branch is None and tag is None):
        return repository, None
    event = GitEvent(
        kind="push",
        branch=branch,
        tag=tag,
        changed_files=None if changed is None else tuple(changed),
        pr_action=None,
        commit=after,
        created_branch=payload.get("createdBranch") is True,
    )
    return repository, event


async def deliveries(request: Request) -> Response:
    return json_response({"deliveries": list(reversed(state_of(request).deliveries))})


routes = [
    Route("/webhooks/github", github_webhook, methods=["POST"]),
    Route("/api/hooks/git", git_hook, methods=["POST"]),
    Route("/api/webhooks/deliveries", deliveries, methods=["GET"]),
]
