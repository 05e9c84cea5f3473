"""The trigger routes over a fake engine: GitHub deliveries are authenticated by their HMAC
signature (and every one is recorded), local hook notifications come from loopback only, and a
change starts exactly the pipelines whose source names the repository and whose trigger (or
branch) matches — once each, pinned to the pushed commit."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_engine import FakeEngine
from starlette.applications import Starlette

from caravan.model.triggers import GitEvent
from caravan.server.app import create_app
from caravan.server.triggers import dispatch_git_event

SECRET = "It's a Secret to Everybody"
SHA = "0123456789abcdef0123456789abcdef01234567"
GITHUB_SOURCE = {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"}
CODESTAR_SOURCE = {
    "category": "Source",
    "owner": "AWS",
    "provider": "CodeStarSourceConnection",
    "version": "1",
}
GIT_SOURCE = {"category": "Source", "owner": "Custom", "provider": "Git", "version": "1"}


class DirEngine(FakeEngine):
    """The fake engine, plus GetPipeline's caravan extension ``metadata.declarationDir``."""

    def __init__(self) -> None:
        super().__init__()
        self.declaration_dirs: dict[str, str] = {}

    def _op_GetPipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = super()._op_GetPipeline(request)
        if request["name"] in self.declaration_dirs:
            answer["metadata"]["declarationDir"] = self.declaration_dirs[request["name"]]
        return answer

    def starts(self) -> list[dict[str, Any]]:
        return [r for op, r in self.calls if op == "StartPipelineExecution"]


def source(name: str, type_id: dict[str, str], **configuration: str) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": type_id,
        "configuration": configuration,
        "outputArtifacts": [{"name": f"{name}Out"}],
    }


def pipeline(name: str, *sources: dict[str, Any], triggers: list[Any] | None = None) -> dict:
    build = {
        "name": "Build",
        "actionTypeId": {
            "category": "Build",
            "owner": "AWS",
            "provider": "CodeBuild",
            "version": "1",
        },
        "inputArtifacts": [{"name": f"{sources[0]['name']}Out"}],
        "configuration": {"ProjectName": "p"},
    }
    declaration: dict[str, Any] = {
        "name": name,
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": list(sources)},
            {"name": "Build", "actions": [build]},
        ],
    }
    if triggers:
        declaration["triggers"] = triggers
    return declaration


def trigger(action: str, **filters: Any) -> dict[str, Any]:
    return {
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": action, **filters},
    }


def push_payload(
    ref: str = "refs/heads/main",
    files: list[str] | None = None,
    *,
    full_name: str = "acme/shop",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "f" * 40,
        "after": SHA,
        "created": False,
        "deleted": False,
        "commits": [{"id": SHA, "added": files or ["src/app.py"], "modified": [], "removed": []}],
        "repository": {
            "full_name": full_name,
            "clone_url": f"https://github.com/{full_name}.git",
            "html_url": f"https://github.com/{full_name}",
            "ssh_url": f"git@github.com:{full_name}.git",
            "default_branch": "main",
        },
        **extra,
    }


def pr_payload(action: str, base: str = "main") -> dict[str, Any]:
    return {
        "action": action,
        "number": 7,
        "pull_request": {"base": {"ref": base}, "head": {"ref": "feature", "sha": SHA}},
        "repository": push_payload()["repository"],
    }


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def engine() -> DirEngine:
    return DirEngine()


def make_app(engine: FakeEngine, **settings: Any) -> Starlette:
    return create_app(engine, trigger_settings={"webhook_secret": SECRET, **settings})


@pytest.fixture
async def client(engine: DirEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(engine), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://caravan.test") as c:
        yield c


async def deliver(
    client: httpx.AsyncClient,
    event: str,
    payload: Any,
    *,
    signature: str | None = "sign",
    delivery: str = "d-1",
) -> httpx.Response:
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signed(body) if signature == "sign" else signature
    return await client.post("/webhooks/github", content=body, headers=headers)


async def deliveries(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/webhooks/deliveries")
    assert response.status_code == 200
    return response.json()["deliveries"]


# Authentication ------------------------------------------------------------------------------


async def test_a_signed_push_starts_the_pipeline_pinned_to_the_commit(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "shop", source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
        )
    )
    response = await deliver(client, "push", push_payload())
    assert response.status_code == 200
    assert [e["pipelineName"] for e in response.json()["pipelineExecutions"]] == ["shop"]
    (start,) = engine.starts()
    assert start["trigger"] == {
        "triggerType": "WebhookV2",
        "triggerDetail": "acme/shop@main 0123456",
    }
    assert start["sourceRevisions"] == [
        {"actionName": "Src", "revisionType": "COMMIT_ID", "revisionValue": SHA}
    ]
    (record,) = await deliveries(client)
    assert record["outcome"] == "accepted" and record["deliveryId"] == "d-1"
    assert record["pipelineExecutionIds"] == [
        response.json()["pipelineExecutions"][0]["pipelineExecutionId"]
    ]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(None, "missing"), ("sha256=" + "0" * 64, "does not match"), ("garbage", "does not match")],
)
async def test_unsigned_or_badly_signed_deliveries_are_refused_and_recorded(
    client: httpx.AsyncClient, engine: DirEngine, signature: str | None, reason: str
) -> None:
    engine.add_pipeline(
        pipeline(
            "shop", source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
        )
    )
    response = await deliver(client, "push", push_payload(), signature=signature, delivery="bad-1")
    assert response.status_code == 401
    assert reason in response.json()["message"]
    assert engine.starts() == []
    (record,) = await deliveries(client)
    assert record["outcome"] == "rejected"
    assert record["deliveryId"] == "bad-1" and record["event"] == "push"
    assert reason in record["reason"]


async def test_a_body_signed_with_another_secret_is_refused(client: httpx.AsyncClient) -> None:
    body = json.dumps(push_payload()).encode()
    response = await deliver(client, "push", body, signature=signed(body, "other secret"))
    assert response.status_code == 401


async def test_without_a_configured_secret_every_delivery_is_refused(engine: DirEngine) -> None:
    transport = httpx.ASGITransport(app=create_app(engine, trigger_settings={}))
    async with httpx.AsyncClient(transport=transport, base_url="http://caravan.test") as c:
        response = await deliver(c, "ping", {"zen": "hi"})
        assert response.status_code == 401
        assert "CARAVAN_WEBHOOK_SECRET" in response.json()["message"]
        (record,) = await deliveries(c)
        assert record["outcome"] == "rejected" and "CARAVAN_WEBHOOK_SECRET" in record["reason"]


async def test_ping_answers_pong(client: httpx.AsyncClient) -> None:
    response = await deliver(client, "ping", {"zen": "Design for failure.", "hook_id": 1})
    assert response.status_code == 200
    assert response.json()["message"] == "pong"


async def test_the_delivery_log_keeps_the_last_100_newest_first_and_never_bodies(
    client: httpx.AsyncClient,
) -> None:
    for index in range(105):
        await deliver(client, "ping", {"marker": "BODY-TEXT"}, delivery=f"d-{index}")
    await deliver(client, "ping", {"marker": "BODY-TEXT"}, signature=None, delivery="last")
    records = await deliveries(client)
    assert len(records) == 100
    assert records[0]["deliveryId"] == "last" and records[0]["outcome"] == "rejected"
    assert records[-1]["deliveryId"] == "d-6"
    assert "BODY-TEXT" not in json.dumps(records)
    assert {"time", "event", "deliveryId", "outcome", "reason"} <= set(records[0])


async def test_a_body_over_5_mib_is_refused(client: httpx.AsyncClient) -> None:
    body = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    response = await deliver(client, "push", body)
    assert response.status_code == 413
    assert (await deliveries(client))[0]["outcome"] == "rejected"


async def test_a_signed_but_malformed_payload_is_a_400(client: httpx.AsyncClient) -> None:
    assert (await deliver(client, "push", b"not json")).status_code == 400
    response = await deliver(client, "push", {"ref": "refs/heads/main"})
    assert response.status_code == 400
    assert "repository.full_name must be a string" in response.json()["message"]


# Push events -------------------------------------------------------------------------------


async def test_a_push_the_trigger_excludes_starts_nothing(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "shop",
            source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main"),
            triggers=[
                trigger(
                    "Src",
                    push=[
                        {"branches": {"includes": ["main"]}, "filePaths": {"excludes": ["docs/**"]}}
                    ],
                )
            ],
        )
    )
    response = await deliver(client, "push", push_payload(files=["docs/guide.md"]))
    assert response.status_code == 200 and response.json()["pipelineExecutions"] == []
    await deliver(client, "push", push_payload("refs/heads/dev"))
    assert engine.starts() == []
    await deliver(client, "push", push_payload(files=["docs/guide.md", "src/app.py"]))
    assert len(engine.starts()) == 1


async def test_a_tag_push_starts_only_tag_triggers(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "release",
            source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main"),
            triggers=[trigger("Src", push=[{"tags": {"includes": ["v*"]}}])],
        )
    )
    engine.add_pipeline(
        pipeline(
            "ci", source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
        )
    )
    response = await deliver(client, "push", push_payload("refs/tags/v2.0.0"))
    assert [e["pipelineName"] for e in response.json()["pipelineExecutions"]] == ["release"]
    assert engine.starts()[0]["trigger"]["triggerDetail"] == "acme/shop@v2.0.0 0123456"


async def test_a_push_to_another_repository_or_a_deletion_starts_nothing(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "shop", source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
        )
    )
    await deliver(client, "push", push_payload(full_name="acme/other"))
    deleted = push_payload(deleted=True)
    deleted["after"] = "0" * 40
    response = await deliver(client, "push", deleted)
    assert response.status_code == 202
    assert engine.starts() == []


async def test_one_push_starts_each_matching_pipeline_once(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "both",
            source("App", GITHUB_SOURCE, Owner="acme", Repo="shop", Branch="main"),
            source("Cfg", GIT_SOURCE, Repository="git@github.com:Acme/Shop.git", Branch="main"),
        )
    )
    engine.add_pipeline(
        pipeline(
            "other", source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
        )
    )
    engine.add_pipeline(
        pipeline(
            "dev-only",
            source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="dev"),
        )
    )
    response = await deliver(client, "push", push_payload())
    assert sorted(e["pipelineName"] for e in response.json()["pipelineExecutions"]) == [
        "both",
        "other",
    ]
    both = next(s for s in engine.starts() if s["name"] == "both")
    assert [r["actionName"] for r in both["sourceRevisions"]] == ["App", "Cfg"]
    assert len(engine.starts()) == 2


async def test_detect_changes_false_turns_the_default_rule_off(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "manual",
            source(
                "Src",
                CODESTAR_SOURCE,
                FullRepositoryId="acme/shop",
                BranchName="main",
                DetectChanges="false",
            ),
        )
    )
    await deliver(client, "push", push_payload())
    assert engine.starts() == []


async def test_a_new_branch_with_file_filters_triggers(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "features",
            source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main"),
            triggers=[
                trigger(
                    "Src",
                    push=[
                        {
                            "branches": {"includes": ["feature/*"]},
                            "filePaths": {"includes": ["src/**"]},
                        }
                    ],
                )
            ],
        )
    )
    created = push_payload("refs/heads/feature/x", created=True)
    created["commits"] = []  # a branch made at an existing commit: GitHub lists no files
    response = await deliver(client, "push", created)
    assert [e["pipelineName"] for e in response.json()["pipelineExecutions"]] == ["features"]


async def test_hosted_names_resolve_through_the_git_repositories_map(engine: DirEngine) -> None:
    engine.add_pipeline(
        pipeline(
            "mirrored",
            source(
                "Src", GIT_SOURCE, Repository="https://git.example.com/team/shop.git", Branch="main"
            ),
        )
    )
    app = make_app(engine, git_repositories={"acme/shop": "https://git.example.com/team/shop"})
    engine.add_pipeline(
        pipeline("named", source("Src", GITHUB_SOURCE, Owner="acme", Repo="shop", Branch="main"))
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        payload = push_payload(full_name="team/shop")
        payload["repository"]["clone_url"] = "https://git.example.com/team/shop.git"
        response = await deliver(c, "push", payload)
    # "named" is mapped to the same URL; "mirrored" names it directly.
    assert sorted(e["pipelineName"] for e in response.json()["pipelineExecutions"]) == [
        "mirrored",
        "named",
    ]


# Pull requests -----------------------------------------------------------------------------


async def test_pull_request_events_follow_the_trigger(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "review",
            source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main"),
            triggers=[
                trigger(
                    "Src",
                    pullRequest=[
                        {"events": ["OPEN", "UPDATED"], "branches": {"includes": ["main"]}}
                    ],
                )
            ],
        )
    )
    assert (await deliver(client, "pull_request", pr_payload("opened"))).json()[
        "pipelineExecutions"
    ]
    assert (await deliver(client, "pull_request", pr_payload("synchronize"))).json()[
        "pipelineExecutions"
    ]
    assert not (await deliver(client, "pull_request", pr_payload("closed"))).json()[
        "pipelineExecutions"
    ]
    assert not (await deliver(client, "pull_request", pr_payload("opened", base="dev"))).json()[
        "pipelineExecutions"
    ]
    ignored = await deliver(client, "pull_request", pr_payload("labeled"))
    assert ignored.status_code == 202
    starts = engine.starts()
    assert len(starts) == 2
    assert starts[0]["sourceRevisions"][0]["revisionValue"] == SHA
    assert starts[0]["trigger"]["triggerDetail"] == "acme/shop@main 0123456 (pull request open)"


async def test_pull_requests_never_use_the_default_rule(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    engine.add_pipeline(
        pipeline(
            "ci", source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
        )
    )
    await deliver(client, "pull_request", pr_payload("opened"))
    assert engine.starts() == []


# Local git hooks -----------------------------------------------------------------------------


def hook_payload(repository: Path, ref: str = "refs/heads/main", **extra: Any) -> dict[str, Any]:
    return {
        "repository": str(repository),
        "ref": ref,
        "before": "f" * 40,
        "after": SHA,
        "changedFiles": ["src/app.py"],
        "createdBranch": False,
        **extra,
    }


async def test_a_hook_notification_resolves_relative_repositories_from_the_declaration_dir(
    client: httpx.AsyncClient, engine: DirEngine, tmp_path: Path
) -> None:
    repo = tmp_path / "work" / "app"
    repo.mkdir(parents=True)
    (tmp_path / "link").symlink_to(repo)
    engine.add_pipeline(
        pipeline("app", source("Src", GIT_SOURCE, Repository="../app", Branch="main"))
    )
    engine.declaration_dirs["app"] = str(tmp_path / "work" / "ci")
    response = await client.post("/api/hooks/git", json=hook_payload(tmp_path / "link"))
    assert response.status_code == 200
    assert [e["pipelineName"] for e in response.json()["pipelineExecutions"]] == ["app"]
    assert engine.starts()[0]["trigger"]["triggerDetail"] == f"{tmp_path / 'link'}@main 0123456"
    # the same repository through its .git directory
    await client.post("/api/hooks/git", json=hook_payload(repo / ".git"))
    assert len(engine.starts()) == 2
    (record, _) = await deliveries(client)
    assert record["source"] == "git-hook" and record["outcome"] == "accepted"


@pytest.fixture
def trunk_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(repo)], check=True)
    return repo


async def test_a_source_without_a_branch_follows_the_repositorys_head(
    client: httpx.AsyncClient, engine: DirEngine, trunk_repo: Path
) -> None:
    repo = trunk_repo
    engine.add_pipeline(pipeline("app", source("Src", GIT_SOURCE, Repository=str(repo))))
    await client.post("/api/hooks/git", json=hook_payload(repo, "refs/heads/other"))
    assert engine.starts() == []
    await client.post("/api/hooks/git", json=hook_payload(repo, "refs/heads/trunk"))
    assert len(engine.starts()) == 1


async def test_hook_notifications_are_accepted_from_loopback_only(
    engine: DirEngine, tmp_path: Path
) -> None:
    engine.add_pipeline(
        pipeline("app", source("Src", GIT_SOURCE, Repository=str(tmp_path), Branch="main"))
    )
    transport = httpx.ASGITransport(app=make_app(engine), client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://caravan.test") as c:
        response = await c.post("/api/hooks/git", json=hook_payload(tmp_path))
        assert response.status_code == 403
        assert "loopback" in response.json()["message"]
        assert (await deliveries(c))[0]["outcome"] == "rejected"
    assert engine.starts() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"repository": "relative/path"}, "absolute path"),
        ({"changedFiles": "src/app.py"}, "changedFiles"),
        ({"after": None}, "after"),
    ],
)
async def test_a_malformed_hook_payload_is_a_400(
    client: httpx.AsyncClient, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    response = await client.post("/api/hooks/git", json={**hook_payload(tmp_path), **change})
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_dispatch_git_event_returns_the_started_execution_ids(
    engine: DirEngine, tmp_path: Path
) -> None:
    engine.add_pipeline(
        pipeline("app", source("Src", GIT_SOURCE, Repository=f"file://{tmp_path}", Branch="main"))
    )
    event = GitEvent("push", "main", None, ("a.txt",), None, SHA)
    ids = await dispatch_git_event(engine, str(tmp_path), event, settings={})
    assert ids == [engine.executions["app"][0]["pipelineExecutionId"]]


async def test_a_pipeline_with_a_malformed_pattern_is_reported_not_started(
    client: httpx.AsyncClient, engine: DirEngine
) -> None:
    codestar = source("Src", CODESTAR_SOURCE, FullRepositoryId="acme/shop", BranchName="main")
    broken = trigger("Src", push=[{"branches": {"includes": ["main", "release/[0-9"]}}])
    engine.add_pipeline(pipeline("broken", codestar, triggers=[broken]))
    engine.add_pipeline(pipeline("fine", codestar))
    response = await deliver(client, "push", push_payload())
    assert response.status_code == 200
    body = response.json()
    assert [e["pipelineName"] for e in body["pipelineExecutions"]] == ["fine"]
    (failure,) = body["failures"]
    assert failure["pipelineName"] == "broken"
    assert "push[0].branches.includes[1]" in failure["message"]
    assert "never closed" in failure["message"]


async def test_the_server_takes_its_secret_and_repository_map_from_the_environment(
    engine: DirEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARAVAN_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("CARAVAN_GIT_REPOSITORIES", "acme/shop=https://git.example.com/x/shop.git")
    engine.add_pipeline(
        pipeline("mapped", source("Src", GITHUB_SOURCE, Owner="acme", Repo="shop", Branch="main"))
    )
    payload = push_payload(full_name="x/shop")
    payload["repository"]["clone_url"] = "https://git.example.com/x/shop.git"
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://caravan.test") as c:
        response = await deliver(c, "push", payload)
    assert response.status_code == 200  # signed with the secret from the environment
    # acme/shop is mapped to the URL x/shop is served from: the same repository.
    assert [e["pipelineName"] for e in response.json()["pipelineExecutions"]] == ["mapped"]
