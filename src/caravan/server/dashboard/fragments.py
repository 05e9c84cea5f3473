"""The live parts of each page, by view: which fragments a view has and how each is drawn.

A page is its fragments in a frame. The same function draws them for the first load of the page,
for every live update (``/ui/events``) and for the answer to a form, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from caravan.engine.api import EngineAPI
from caravan.server.dashboard.environments import EnvironmentSource, version_chart
from caravan.server.dashboard.history import load_execution, load_history, load_pipelines
from caravan.server.dashboard.render import Fragment, Renderer
from caravan.server.dashboard.views import load_board

ViewKind = Literal["pipelines", "pipeline", "executions", "execution", "environments"]
VIEW_KINDS: tuple[ViewKind, ...] = (
    "pipelines",
    "pipeline",
    "executions",
    "execution",
    "environments",
)
BOARD_HISTORY_ROWS = 10
HISTORY_PAGE_ROWS = 50


@dataclass(frozen=True)
class View:
    """What one page shows: its kind and the pipeline / execution it is about."""

    kind: ViewKind
    pipeline: str = ""
    execution: str = ""
    next_token: str = ""  # an older page of the executions list (not live)

    @property
    def live(self) -> bool:
        return not self.next_token


class Fragments:
    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    async def of(
        self, view: View, engine: EngineAPI, environments: EnvironmentSource | None
    ) -> list[Fragment]:
        """The fragments of ``view`` drawn from the engine's current state. Raises
        ``CaravanError`` when the pipeline or execution does not exist."""
        if view.kind == "pipelines":
            return await self._pipelines(engine)
        if view.kind == "pipeline":
            return await self._pipeline(engine, view.pipeline)
        if view.kind == "executions":
            return await self._executions(engine, view)
        if view.kind == "execution":
            return await self._execution(engine, view)
        return self._environments(environments)

    async def _pipelines(self, engine: EngineAPI) -> list[Fragment]:
        rows = await load_pipelines(engine)
        return [self.renderer.fragment("pipelines", "_pipelines.html", pipelines=rows)]

    async def _pipeline(self, engine: EngineAPI, name: str) -> list[Fragment]:
        board = await load_board(engine, name)
        history = await load_history(engine, name, limit=BOARD_HISTORY_ROWS)
        running = [row for row in history.rows if row.running]
        fragments = [
            self.renderer.fragment("controls", "_controls.html", board=board, running=running)
        ]
        for index, stage in enumerate(board.stages):
            fragments.append(
                self.renderer.fragment(
                    f"stage-{stage.name}", "_stage.html", board=board, stage=stage, index=index
                )
            )
        fragments.append(
            self.renderer.fragment(
                "history", "_history.html", name=name, history=history, full=False
            )
        )
        return fragments

    async def _executions(self, engine: EngineAPI, view: View) -> list[Fragment]:
        history = await load_history(
            engine, view.pipeline, limit=HISTORY_PAGE_ROWS, next_token=view.next_token or None
        )
        fragment = self.renderer.fragment(
            "history", "_history.html", name=view.pipeline, history=history, full=True
        )
        return [fragment]

    async def _execution(self, engine: EngineAPI, view: View) -> list[Fragment]:
        detail = await load_execution(engine, view.pipeline, view.execution)
        return [self.renderer.fragment("execution", "_execution.html", detail=detail)]

    def _environments(self, source: EnvironmentSource | None) -> list[Fragment]:
        environments = source.environments() if source is not None else []
        charts = {
            (env.app, env.name, m.version): version_chart(m)
            for env in environments
            for m in env.metrics
        }
        fragment = self.renderer.fragment(
            "environments", "_environments.html", environments=environments, charts=charts
        )
        return [fragment]
