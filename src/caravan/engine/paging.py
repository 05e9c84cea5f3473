"""Pagination of list operations with opaque ``nextToken`` values, as CodePipeline pages."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

from caravan.errors import InvalidInputError

T = TypeVar("T")


class InvalidNextTokenError(InvalidInputError):
    reference = "invalid-next-token"
    aws_type = "InvalidNextTokenException"


def page(
    items: Sequence[T], request: dict[str, Any], *, default_size: int, max_size: int = 1000
) -> tuple[list[T], str | None]:
    size = request.get("maxResults") or request.get("MaxResults") or default_size
    if not isinstance(size, int) or not 1 <= size <= max_size:
        raise InvalidInputError(f"maxResults must be an integer from 1 to {max_size}")
    start = _offset(request.get("nextToken") or request.get("NextToken"))
    chunk = list(items[start : start + size])
    more = start + size < len(items)
    return chunk, _token(start + size) if more else None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(token: object) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
        if not text.startswith("o:"):
            raise ValueError(text)
        return int(text[2:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidNextTokenError(f"nextToken {token!r} was not issued by this server") from None
