"""The environments page's data contract and its charts.

The platform (functions, aliases, the API front's metrics) is wired in by whoever assembles the
server: anything with an ``environments()`` method returning ``EnvironmentView`` objects is an
``EnvironmentSource``. With no source, the page says that no apps are deployed.

The charts are inline SVG drawn from plain numbers (no chart library, nothing fetched): one chart
per version, error rate and p99 latency over time, each line scaled to its own axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class AliasView:
    """An alias of a function and the versions it routes to, with weights (0..1) that add up
    to 1; two entries while a canary runs."""

    function: str
    alias: str
    versions: list[tuple[str, float]]


@dataclass(frozen=True)
class VersionMetrics:
    """Traffic of one function version: totals, and a series of (epoch seconds, error rate
    0..1, p99 latency in ms) points, oldest first."""

    version: str
    requests: int
    error_rate: float
    p50_ms: float
    p99_ms: float
    series: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class EnvironmentView:
    """One environment of one app (e.g. dromedary / prod): where it answers and what runs."""

    app: str
    name: str
    urls: list[str]
    aliases: list[AliasView]
    metrics: list[VersionMetrics]


class EnvironmentSource(Protocol):
    """Where the environments page gets its data; called on every render (keep it cheap)."""

    def environments(self) -> list[EnvironmentView]: ...


# Charts ---------------------------------------------------------------------------------------
WIDTH = 480
HEIGHT = 160
PAD_LEFT = 48
PAD_RIGHT = 56
PAD_TOP = 12
PAD_BOTTOM = 24


@dataclass(frozen=True)
class Axis:
    label: str  # what the axis measures, e.g. "error %"
    top: str  # the value at the top of the plot, formatted
    points: str  # SVG polyline points, "x,y x,y ..."


@dataclass(frozen=True)
class Chart:
    """A drawn chart: the SVG geometry a template needs, nothing else."""

    width: int
    height: int
    left: int  # plot area bounds
    right: int
    top: int
    bottom: int
    error: Axis
    latency: Axis
    start: str  # time labels under the plot
    end: str
    empty: bool


def _nice_top(peak: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above ``peak`` (an axis top that reads well)."""
    if peak <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 < peak:
        scale *= 10
    while scale > peak:
        scale /= 10
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * scale >= peak:
            return step * scale
    return 10 * scale


def _polyline(
    times: Sequence[float], values: Sequence[float], top: float, box: tuple[int, int, int, int]
) -> str:
    left, right, upper, lower = box
    t0, t1 = times[0], times[-1]
    span = (t1 - t0) or 1.0
    points = []
    for t, value in zip(times, values, strict=True):
        x = left + (right - left) * ((t - t0) / span if t1 > t0 else 0.5)
        y = lower - (lower - upper) * min(max(value, 0.0), top) / top
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def _format_number(value: float) -> str:
    return f"{value:g}"


def version_chart(metrics: VersionMetrics) -> Chart:
    """The chart of one version: error rate (left axis, %) and p99 latency (right axis, ms)."""
    box = (PAD_LEFT, WIDTH - PAD_RIGHT, PAD_TOP, HEIGHT - PAD_BOTTOM)
    series = sorted(metrics.series)
    if not series:
        empty = Axis("", "", "")
        return Chart(WIDTH, HEIGHT, *box, error=empty, latency=empty, start="", end="", empty=True)
    times = [point[0] for point in series]
    errors = [point[1] * 100 for point in series]
    latencies = [point[2] for point in series]
    error_top = _nice_top(max(errors))
    latency_top = _nice_top(max(latencies))
    return Chart(
        WIDTH,
        HEIGHT,
        *box,
        error=Axis("error %", _format_number(error_top), _polyline(times, errors, error_top, box)),
        latency=Axis(
            "p99 ms", _format_number(latency_top), _polyline(times, latencies, latency_top, box)
        ),
        start=_clock(times[0]),
        end=_clock(times[-1]),
        empty=False,
    )
