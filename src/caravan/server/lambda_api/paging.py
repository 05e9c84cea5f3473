"""Marker/MaxItems paging of the Lambda list operations.

A page holds at most ``MaxItems`` entries (Lambda's default and ceiling: 50). ``NextMarker`` names
the sort key of the page's last entry, so the next page starts after it even if entries were added
or removed in between (an index would skip or repeat them). Markers are opaque to clients: base64
of the JSON key; one this server did not issue is refused with InvalidParameterValueException.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from caravan.platform.functions import LATEST, InvalidParameterValueException

PAGE_SIZE = 50
MAX_ITEMS_CEILING = 10000  # what botocore's model allows a client to ask for

Key = tuple[Any, ...]
T = TypeVar("T")


def max_items(query: Mapping[str, str]) -> int:
    """The page size a request asks for (MaxItems), capped at ``PAGE_SIZE``."""
    raw = query.get("MaxItems")
    if raw is None:
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ITEMS_CEILING:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{raw[:40]}' at 'maxItems' failed to satisfy "
            f"constraint: Member must be an integer between 1 and {MAX_ITEMS_CEILING}"
        )
    return min(int(raw), PAGE_SIZE)


def version_order(version: str) -> int:
    """$LATEST first, then the published versions by number."""
    return -1 if version == LATEST else int(version)


def page(
    items: Sequence[T], key: Callable[[T], Key], query: Mapping[str, str]
) -> tuple[list[T], str | None]:
    """(the entries of the page the query asks for, NextMarker or None on the last page)."""
    size = max_items(query)
    ordered = sorted(items, key=key)
    marker = query.get("Marker")
    if marker:
        after = _decode(marker)
        try:
            ordered = [item for item in ordered if key(item) > after]
        except TypeError:  # a marker of another list: its key does not compare with ours
            raise _bad_marker(marker) from None
    chosen = ordered[:size]
    more = len(ordered) > size
    return chosen, (_encode(key(chosen[-1])) if more else None)


def _encode(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode("ascii")


def _decode(marker: str) -> Key:
    try:
        value = json.loads(base64.urlsafe_b64decode(marker.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        raise _bad_marker(marker) from None
    if not isinstance(value, list):
        raise _bad_marker(marker)
    return tuple(value)


def _bad_marker(marker: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Marker {marker[:60]!r} is not a marker this server issued; pass the NextMarker of "
        "the previous page"
    )


def listing(member: str, chosen: list[T], marker: str | None) -> dict[str, Any]:
    """A list operation's answer: ``{member: [...], "NextMarker": ...}`` (no marker at the end)."""
    answer: dict[str, Any] = {member: chosen}
    if marker is not None:
        answer["NextMarker"] = marker
    return answer
