"""In-process publish/subscribe of committed changes (the live board, SSE, log following).

Every state change is published after its transaction commits, so a subscriber never sees a
change that could still roll back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

Event = dict[str, Any]


class EventBus:
    def __init__(self, *, queue_size: int = 10_000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    def publish(self, event: Event) -> None:
        for queue in list(self._queues):
            # A subscriber that stopped reading loses events rather than stalling the engine.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def subscribe(self, pipeline: str | None = None) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            while True:
                event = await queue.get()
                if pipeline is None or event.get("pipeline") == pipeline:
                    yield event
        finally:
            self._queues.discard(queue)
