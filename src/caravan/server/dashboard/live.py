"""Live updates over Server-Sent Events.

``GET /ui/events?view=KIND&pipeline=NAME&execution=ID`` keeps one page's fragments current.
On connect it sends every fragment (the browser skips those whose digest it already has, so a
reconnect after a network break or a server restart brings the page up to date); then, whenever
the engine publishes a change of the pipeline, it redraws the view and sends the fragments that
changed (``event: fragment``, data ``{"id", "digest", "html"}``). Changes that arrive together
are drawn once. When the set of fragments changes (a stage added by UpdatePipeline) or the
pipeline is gone, it sends ``event: reload``. The environments view has no engine events; it is
redrawn every few seconds instead.

``GET /ui/logs/{id}?offset=N`` streams an action's log from byte N as ``event: log`` messages
whose ``id`` is the byte offset reached (so a reconnecting browser resumes where it was, through
``Last-Event-ID``), then ``event: end`` with the action's final status when known.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from caravan.errors import CaravanError, InvalidInputError, NotFoundError
from caravan.server.dashboard.fragments import VIEW_KINDS, View
from caravan.server.dashboard.history import action_runs
from caravan.server.dashboard.render import Fragment
from caravan.server.dashboard.state import Dashboard, internal_error, logger

T = TypeVar("T")

COALESCE_SECONDS = 0.05
ENVIRONMENTS_REFRESH_SECONDS = 3.0
RETRY_MILLISECONDS = 1000
DEFAULT_HEARTBEAT_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = b": heartbeat\n\n"

Subscribe = Callable[[], AsyncIterator[object]]


def sse(event: str, data: object, *, event_id: str | None = None) -> bytes:
    # json.dumps escapes newlines, so the data is always one line.
    head = f"id: {event_id}\n" if event_id is not None else ""
    payload = json.dumps(data, ensure_ascii=False)
    return f"{head}event: {event}\ndata: {payload}\n\n".encode()


class Ended(Exception):
    """The source of a ``Pump`` has no more items."""


class Pump(Generic[T]):
    """Moves items from an async iterator into a queue in a task of its own, so waiting for
    the next item can time out (heartbeats, refreshes) without cancelling the iterator."""

    def __init__(self, source: AsyncIterator[T]) -> None:
        self._queue: asyncio.Queue[tuple[bool, T | None]] = asyncio.Queue()
        self._ended = False
        self._task = asyncio.create_task(self._run(source))

    async def _run(self, source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                self._queue.put_nowait((True, item))
        except CaravanError as error:
            logger.warning("live stream source ended early: %s", error)
        except Exception:
            internal_error("live stream source")
        finally:
            closer = getattr(source, "aclose", None)
            if closer is not None:
                await closer()
            self._queue.put_nowait((False, None))

    async def get(self, wait: float | None) -> T | None:
        """The next item; None when ``wait`` seconds pass first. Raises ``Ended``."""
        if self._ended:
            raise Ended
        try:
            more, item = await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None
        if not more:
            self._ended = True
            raise Ended
        return item

    def drain(self) -> None:
        """Drop the items already queued (they are covered by one redraw)."""
        while not self._queue.empty():
            more, _ = self._queue.get_nowait()
            if not more:
                self._ended = True

    def cancel(self) -> None:
        self._task.cancel()


def _heartbeat(request: Request) -> float:
    return float(getattr(request.app.state, "heartbeat_seconds", DEFAULT_HEARTBEAT_SECONDS))


def view_of(request: Request) -> View:
    params = request.query_params
    kind = params.get("view", "pipelines")
    if kind not in VIEW_KINDS:
        raise InvalidInputError(f"view must be one of {', '.join(VIEW_KINDS)}, got {kind!r}")
    pipeline, execution = params.get("pipeline", ""), params.get("execution", "")
    if kind in ("pipeline", "executions", "execution") and not pipeline:
        raise InvalidInputError(f"the {kind} view needs the pipeline parameter")
    if kind == "execution" and not execution:
        raise InvalidInputError("the execution view needs the execution parameter")
    return View(kind, pipeline, execution)


# Fragments ------------------------------------------------------------------------------------
async def fragment_events(dashboard: Dashboard, request: Request) -> Response:
    engine = dashboard.engine(request)
    environments = dashboard.environments(request)
    try:
        view = view_of(request)
        await dashboard.fragments.of(view, engine, environments)  # 404 now, not a silent stream
    except CaravanError as error:
        return PlainTextResponse(error.message, status_code=error.http_status)
    except Exception:
        internal = internal_error("live events")
        return PlainTextResponse(internal.message, status_code=internal.http_status)

    async def draw() -> list[Fragment]:
        return await dashboard.fragments.of(view, engine, environments)

    subscribe: Subscribe | None = None
    if view.kind != "environments":
        pipeline = view.pipeline or None

        def subscribe() -> AsyncIterator[object]:
            return aiter(engine.subscribe(pipeline))

    stream = fragment_stream(draw, subscribe, heartbeat=_heartbeat(request))
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


async def fragment_stream(
    draw: Callable[[], Awaitable[list[Fragment]]],
    subscribe: Subscribe | None,
    *,
    heartbeat: float,
    refresh: float = ENVIRONMENTS_REFRESH_SECONDS,
) -> AsyncIterator[bytes]:
    """The SSE body of one page: all fragments now, then the ones each change alters. With no
    ``subscribe`` (nothing publishes changes of the view), it redraws every ``refresh`` s."""
    changes = Pump(subscribe()) if subscribe is not None else None
    try:
        # Let the subscription reach the engine before the first drawing, so no change falls
        # between the two.
        await asyncio.sleep(0)
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        fragments = await draw()
        ids = [f.id for f in fragments]
        sent = {f.id: f.digest for f in fragments}
        for fragment in fragments:
            yield sse("fragment", fragment.message())
        while True:
            if changes is None:
                await asyncio.sleep(refresh)
            else:
                try:
                    change = await changes.get(heartbeat)
                except Ended:
                    return  # the browser reconnects and starts over
                if change is None:
                    yield HEARTBEAT
                    continue
                await asyncio.sleep(COALESCE_SECONDS)
                changes.drain()
            try:
                fragments = await draw()
            except NotFoundError:
                yield sse("reload", {})
                return
            except CaravanError as error:
                logger.warning("live view not redrawn: %s", error)
                continue
            except Exception:
                internal_error("live view")  # logged; the next change tries again
                continue
            if [f.id for f in fragments] != ids:
                yield sse("reload", {})
                return
            changed = [f for f in fragments if sent.get(f.id) != f.digest]
            for fragment in changed:
                sent[fragment.id] = fragment.digest
                yield sse("fragment", fragment.message())
            if not changed:
                yield HEARTBEAT  # a write now and then notices a browser that has gone
    finally:
        # No await here: when the browser has gone, this runs inside a cancelled scope.
        if changes is not None:
            changes.cancel()


# Logs -----------------------------------------------------------------------------------------
def _offset(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("offset") or "0"
    if not raw.isdigit():
        raise InvalidInputError(f"the log offset must be a non-negative integer, got {raw!r}")
    return int(raw)


async def log_events(dashboard: Dashboard, request: Request) -> Response:
    action_execution_id = request.path_params["action_execution_id"]
    engine = dashboard.engine(request)
    pipeline = request.query_params.get("pipeline", "")
    execution = request.query_params.get("execution", "")
    try:
        offset = _offset(request)
        await engine.read_log(action_execution_id, offset)  # an unknown id is a 404 now
    except CaravanError as error:
        return PlainTextResponse(error.message, status_code=error.http_status)

    async def final_status() -> str:
        if not (pipeline and execution):
            return ""
        with contextlib.suppress(CaravanError):
            for run in await action_runs(engine, pipeline, execution):
                if run.id == action_execution_id:
                    return run.status
        return ""

    def follow() -> AsyncIterator[str]:
        return aiter(engine.follow_log(action_execution_id, offset))

    stream = log_stream(follow, offset, final_status, heartbeat=_heartbeat(request))
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


async def log_stream(
    follow: Callable[[], AsyncIterator[str]],
    offset: int,
    final_status: Callable[[], Awaitable[str]],
    *,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    """The SSE body of a log page: the log from ``offset`` as it grows, then its end."""
    source = Pump(follow())
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        while True:
            try:
                text = await source.get(heartbeat)
            except Ended:
                break
            if text is None:
                yield HEARTBEAT
                continue
            offset += len(text.encode())
            yield sse("log", {"text": text}, event_id=str(offset))
        yield sse("end", {"status": await final_status()}, event_id=str(offset))
    finally:
        source.cancel()
