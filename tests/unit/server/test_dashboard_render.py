"""What the dashboard draws from data it does not control: escaping, safe links, the
environments page and its charts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dashboard_support import (
    Steps,
    approval,
    client_for,
    dashboard_app,
    fragment,
    pipeline,
    running_engine,
    stage_of,
    stage_status,
    step,
    wait_for,
)
from markupsafe import Markup
from starlette.applications import Starlette

from caravan.engine.engine import Engine
from caravan.server.dashboard import (
    AliasView,
    EnvironmentView,
    VersionMetrics,
    dashboard_routes,
)
from caravan.server.dashboard.environments import version_chart
from caravan.server.dashboard.render import Fragment

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with running_engine(tmp_path, Steps()) as opened:
        yield opened


async def test_text_from_actions_and_users_is_escaped_everywhere(
    engine: Engine, tmp_path: Path
) -> None:
    hostile = pipeline(
        "hostile",
        [
            ("Source", [step("Fetch", category="Source", Summary=SCRIPT)]),
            (
                "Build",
                [
                    step("Compile", Mode="fail", Message='<img src=x onerror="alert(2)">'),
                    approval("Gate", CustomData=SCRIPT, ExternalEntityLink="javascript:alert(3)"),
                ],
            ),
        ],
        variables=[{"name": "Note", "defaultValue": '"><script>alert(4)</script>'}],
    )
    await engine.call("CreatePipeline", hostile)
    state = await wait_for(
        engine,
        "hostile",
        lambda s: (stage_of(s, "Build")["actionStates"][1].get("latestExecution") or {}).get(
            "token"
        ),
        "the approval",
    )
    execution_id = stage_of(state, "Build")["latestExecution"]["pipelineExecutionId"]
    async with client_for(dashboard_app(engine)) as client:
        pages = [
            (await client.get("/pipelines/hostile")).text,
            (await client.get(f"/pipelines/hostile/executions/{execution_id}")).text,
        ]
    for page in pages:
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert 'onerror="alert' not in page
    board = pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment(board, "stage-Source")
    build = fragment(board, "stage-Build")
    assert "&lt;img src=x onerror=" in build
    assert "javascript:" not in build  # a review link that is not http(s) is not a link
    assert 'value="&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;"' in fragment(board, "controls")
    assert "&lt;script&gt;alert(4)" in pages[1]  # the variable's value on the execution page


class Source:
    def __init__(self, environments: list[EnvironmentView]) -> None:
        self.listed = environments

    def environments(self) -> list[EnvironmentView]:
        return self.listed


async def test_without_a_source_the_environments_page_says_no_apps_are_deployed(
    engine: Engine,
) -> None:
    async with client_for(dashboard_app(engine)) as client:
        page = await client.get("/environments")
    assert page.status_code == 200 and "No apps are deployed." in page.text


async def test_environments_show_urls_alias_weights_and_a_chart_per_version(
    engine: Engine,
) -> None:
    canary = EnvironmentView(
        app="dromedary",
        name="prod",
        urls=["http://127.0.0.1:9000/prod", "javascript:alert(1)"],
        aliases=[AliasView("api", "live", [("3", 0.9), ("4", 0.1)])],
        metrics=[
            VersionMetrics("3", 900, 0.002, 12.0, 80.0, [(100.0, 0.0, 70.0), (160.0, 0.004, 90.0)]),
            VersionMetrics("4", 100, 0.05, 15.0, 300.0, [(100.0, 0.05, 300.0)]),
            VersionMetrics("5", 0, 0.0, 0.0, 0.0, []),
        ],
    )
    app = dashboard_app(engine, environments=Source([canary]))
    async with client_for(app) as client:
        page = (await client.get("/environments")).text
    body = fragment(page, "environments")
    assert 'href="http://127.0.0.1:9000/prod"' in body
    assert 'href="javascript:' not in body and "javascript:alert(1)" in body  # shown, not linked
    assert "v3 90.0%" in body and "v4 10.0%" in body
    assert len(re.findall(r'<svg class="chart"', body)) == 2  # version 5 has no traffic yet
    assert "no traffic yet" in body
    assert "errors 5.0%" in body and "p99 300 ms" in body


async def test_routes_built_with_their_own_engine_and_source_need_nothing_on_the_app(
    engine: Engine,
) -> None:
    source = Source([EnvironmentView("own", "dev", [], [], [])])
    app = Starlette(routes=dashboard_routes(engine, environments=source))
    async with client_for(app) as client:
        assert 'data-app="own"' in (await client.get("/environments")).text
        assert "No pipelines yet" in (await client.get("/")).text


def test_a_chart_keeps_its_lines_inside_the_plot_with_readable_axis_tops() -> None:
    metrics = VersionMetrics(
        "7", 10, 0.1, 5.0, 9.0, [(30.0, 0.37, 250.0), (0.0, 0.0, 10.0), (60.0, 0.1, 120.0)]
    )
    chart = version_chart(metrics)
    assert (chart.error.top, chart.latency.top) == ("50", "500")  # 37 % -> 50, 250 ms -> 500
    for axis in (chart.error, chart.latency):
        points = [tuple(map(float, p.split(","))) for p in axis.points.split()]
        assert [x for x, _ in points] == sorted(x for x, _ in points)  # oldest first
        assert points[0][0] == chart.left and points[-1][0] == chart.right
        assert all(chart.top <= y <= chart.bottom for _, y in points)
    assert version_chart(VersionMetrics("8", 0, 0, 0, 0, [])).empty


def test_a_running_duration_does_not_make_a_fragment_look_changed() -> None:
    earlier = Fragment("x", Markup('<span class="duration" data-since="1.5">3.2s</span>'))
    later = Fragment("x", Markup('<span class="duration" data-since="1.5">4.9s</span>'))
    ended = Fragment("x", Markup('<span class="duration">4.9s</span>'))
    assert earlier.digest == later.digest != ended.digest


async def test_a_stage_that_waits_for_approval_stays_in_progress(engine: Engine) -> None:
    """The board's status classes follow the engine's statuses (blue while waiting)."""
    await engine.call(
        "CreatePipeline",
        pipeline("wait", [("Source", [step("Fetch", category="Source")]), ("Go", [approval("A")])]),
    )
    await wait_for(engine, "wait", lambda s: stage_status(s, "Go") == "InProgress", "approval")
    async with client_for(dashboard_app(engine)) as client:
        go = fragment((await client.get("/pipelines/wait")).text, "stage-Go")
    assert '<section class="stage status-inprogress" data-stage="Go"' in go
    assert '<article class="card status-inprogress" data-action="A"' in go
