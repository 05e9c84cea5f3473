"""Invocation logs in Lambda's CloudWatch format, and the per-function log files.

One invocation's log is what a Lambda log stream shows for it::

    INIT_START Runtime Version: python3.11 (caravan)     (cold starts only, then init output)
    START RequestId: <id> Version: <v>
    <the function's stdout and stderr>
    END RequestId: <id>
    REPORT RequestId: <id>\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
        Max Memory Used: 20 MB[\tInit Duration: 45.67 ms]
    <timestamp> <id> Task timed out after 3.00 seconds   (timeouts only)

It is appended to ``<root>/<function>/<YYYY-MM-DD>.log`` (UTC) and, for ``LogType=Tail``, its
last 4 KB are returned base64-encoded like ``X-Amz-Log-Result``.
"""

from __future__ import annotations

import base64
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TAIL_BYTES = 4096


@dataclass(frozen=True)
class InvocationLog:
    request_id: str
    version: str
    runtime: str
    output: bytes
    duration_ms: float
    memory_size: int
    max_memory_mb: int
    init_output: bytes | None = None
    init_ms: float | None = None
    closing_line: str | None = None  # e.g. the timeout notice Lambda writes after REPORT

    def render(self) -> str:
        lines: list[str] = []
        if self.init_output is not None:
            lines.append(f"INIT_START Runtime Version: {self.runtime} (caravan)\n")
            lines.append(_text(self.init_output))
        lines.append(f"START RequestId: {self.request_id} Version: {self.version}\n")
        lines.append(_text(self.output))
        lines.append(f"END RequestId: {self.request_id}\n")
        report = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {billed_ms(self.duration_ms)} ms\t"
            f"Memory Size: {self.memory_size} MB\tMax Memory Used: {self.max_memory_mb} MB"
        )
        if self.init_ms is not None:
            report += f"\tInit Duration: {self.init_ms:.2f} ms"
        lines.append(report + "\n")
        if self.closing_line:
            lines.append(self.closing_line + "\n")
        return "".join(lines)


def billed_ms(duration_ms: float) -> int:
    """Lambda bills in 1 ms increments, rounding up, at least 1 ms."""
    return max(1, math.ceil(duration_ms))


def tail(text: str) -> str:
    """The last 4 KB of a log, base64-encoded (the X-Amz-Log-Result header's value)."""
    return base64.b64encode(text.encode("utf-8")[-TAIL_BYTES:]).decode("ascii")


def _text(output: bytes) -> str:
    text = output.decode("utf-8", errors="replace")
    return text if not text or text.endswith("\n") else text + "\n"


class FunctionLogs:
    """Appends invocation logs to one file per function and UTC day under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def path(self, function_name: str, day: datetime | None = None) -> Path:
        day = day or datetime.now(UTC)
        return self.root / function_name / f"{day:%Y-%m-%d}.log"

    def append(self, function_name: str, text: str) -> None:
        path = self.path(function_name)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(text)
