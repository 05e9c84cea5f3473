"""The colours people vote for, and the chart items built from their counts.

Adding or removing a colour here is the classic "push a change and watch it flow" demo: the page
draws whatever ``/data`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

INITIAL_COUNT = 10


@dataclass(frozen=True)
class Colour:
    label: str  # also the name clients send: /increment?color=<label>
    color: str  # the slice's fill
    highlight: str  # the fill while hovered


COLOURS = (
    Colour("charcoal", "#4D5360", "#616774"),
    Colour("green", "#46BFBD", "#5AD3D1"),
    Colour("orange", "#FDB45C", "#FFC870"),
    Colour("purple", "#9B59B6", "#B07CC6"),
    Colour("blue", "#3498DB", "#5DADE2"),
)


def colour_exists(name: object) -> bool:
    """Whether ``name`` is one of the colours (exact label)."""
    return isinstance(name, str) and any(c.label == name for c in COLOURS)


def all_counts(stored: Mapping[str, int]) -> dict[str, int]:
    """Every colour's count; a colour never voted for starts at ``INITIAL_COUNT``.

    Counts of colours since removed stay stored but are not shown."""
    return {c.label: int(stored.get(c.label, INITIAL_COUNT)) for c in COLOURS}


def chart_items(stored: Mapping[str, int]) -> list[dict[str, object]]:
    """The chart's list: ``{label, value, color, highlight}`` per colour, in a fixed order."""
    counts = all_counts(stored)
    return [
        {"label": c.label, "value": counts[c.label], "color": c.color, "highlight": c.highlight}
        for c in COLOURS
    ]
