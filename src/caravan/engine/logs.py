"""Action logs: one append-only file per action execution, readable while it is written."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from caravan.engine.api import LogChunk

_SAFE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class ActionLogs:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._changed: dict[str, asyncio.Event] = {}

    def path(self, action_execution_id: str) -> Path:
        if not _SAFE_ID.match(action_execution_id):
            raise ValueError(f"not an action execution id: {action_execution_id!r}")
        return self.root / f"{action_execution_id}.log"

    def writer(self, action_execution_id: str) -> Callable[[str], None]:
        path = self.path(action_execution_id)

        def write(text: str) -> None:
            if not text.endswith("\n"):
                text += "\n"
            with path.open("a", encoding="utf-8", errors="replace") as handle:
                handle.write(text)
            self.touch(action_execution_id)

        return write

    def touch(self, action_execution_id: str) -> None:
        """Wake followers: the log grew or the action ended."""
        event = self._changed.pop(action_execution_id, None)
        if event is not None:
            event.set()

    def read(self, action_execution_id: str, offset: int, *, complete: bool) -> LogChunk:
        path = self.path(action_execution_id)
        if not path.exists():
            return LogChunk("", offset, complete)
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        return LogChunk(data.decode("utf-8", errors="replace"), offset + len(data), complete)

    async def follow(
        self, action_execution_id: str, offset: int, is_live: Callable[[], bool]
    ) -> AsyncIterator[str]:
        while True:
            waiter = self._changed.setdefault(action_execution_id, asyncio.Event())
            live = is_live()
            chunk = self.read(action_execution_id, offset, complete=not live)
            offset = chunk.next_offset
            if chunk.text:
                yield chunk.text
            if not live:
                return
            # Re-check liveness now and then: the action may have ended in another process.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=1.0)
