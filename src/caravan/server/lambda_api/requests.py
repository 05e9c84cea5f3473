"""One Lambda API exchange: the request's path parameters, query, headers, bounded body and
typed fields, and the JSON answer.

Bodies are hostile until read: each operation reads at most its limit (6 MB for Invoke, Lambda's
69,905,067 bytes -- a 50 MB zip in base64 -- for code uploads, 256 KiB for the rest) and a body
over it is refused after being drained (up to ``DRAIN_LIMIT``) so the client hears the error
rather than a reset connection. The JSON must be an object; ``Fields`` reads it with the type
each member must have and names the member (``Code.ZipFile``) when it has another.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive

from caravan.artifacts.store import ArtifactStore
from caravan.errors import CaravanError
from caravan.platform.functions import (
    FunctionRegistry,
    InvalidParameterValueException,
    InvalidRequestContentException,
    Invoker,
)
from caravan.server.lambda_api.errors import RequestEntityTooLargeException

MAX_CONTROL_BODY = 256 * 1024  # every request without code is far below this
MAX_CODE_BODY = 69_905_067  # Lambda's limit for CreateFunction/UpdateFunctionCode bodies
DRAIN_LIMIT = 128 * 1024 * 1024  # past this a too-large body is not read on; the link is dropped
JSON = "application/json"

T = TypeVar("T")


@dataclass
class Call:
    """What a handler gets: the request and the platform it acts on."""

    params: Mapping[str, str]  # FunctionName, Name from the path
    query: Mapping[str, str]
    headers: Headers
    receive: Receive
    registry: FunctionRegistry
    invoker: Invoker
    artifacts: ArtifactStore | None

    async def body(self, limit: int, too_large: Callable[[int], CaravanError]) -> bytes:
        """The body, or ``too_large(limit)`` raised once it passes ``limit`` bytes."""
        return await read_body(self.receive, self.headers, limit, too_large)

    async def fields(self, operation: str, limit: int = MAX_CONTROL_BODY) -> Fields:
        """The body as a JSON object (an empty body is ``{}``)."""
        body = await self.body(limit, lambda n: entity_too_large(n, operation))
        return Fields(parse_object(body))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking registry or store call off the event loop (it writes to disk)."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    def qualifier(self) -> str | None:
        value = self.query.get("Qualifier")
        if value is not None:
            check_qualifier(value)
        return value


def query_of(query_string: bytes) -> dict[str, str]:
    """The query parameters (the last one wins when a name repeats)."""
    text = query_string.decode("latin-1")
    return dict(parse_qsl(text, keep_blank_values=True))


def check_qualifier(value: str) -> None:
    if not 1 <= len(value) <= 128 or not all(c.isalnum() or c in "$_-" for c in value):
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{value[:140]}' at 'qualifier' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "(|[a-zA-Z0-9$_-]+) (1-128 chars)"
        )


def entity_too_large(limit: int, operation: str) -> CaravanError:
    return RequestEntityTooLargeException(
        f"Request must be smaller than {limit} bytes for the {operation} operation"
    )


async def read_body(
    receive: Receive, headers: Headers, limit: int, too_large: Callable[[int], CaravanError]
) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT:
        raise too_large(limit)  # not worth draining: answer now and let the link drop
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequestContentException("the client disconnected while sending the body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            raise too_large(limit)
        if not message.get("more_body", False):
            break
    if size > limit:
        raise too_large(limit)
    return b"".join(chunks)


def parse_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: the body is not UTF-8 ({exc.reason} at "
            f"byte {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # a number of 5,000 digits, 100,000 nested [
        raise InvalidRequestContentException(
            f"Could not parse request body into json: {str(exc)[:120] or 'nested too deeply'}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequestContentException(
            f"Could not parse request body into json: expected a JSON object, got {_kind(data)}"
        )
    return data


class Fields:
    """Typed access to a JSON object's members; ``null`` counts as absent."""

    def __init__(self, data: Mapping[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where  # "Code." for the members of Code

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def string(self, name: str) -> str | None:
        return self._typed(name, str, "a string")

    def required_string(self, name: str) -> str:
        value = self.string(name)
        if value is None:
            raise self._missing(name)
        return value

    def integer(self, name: str) -> int | None:
        value = self.raw(name)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool):
            raise self._wrong(name, "an integer", value)
        return self._typed(name, int, "an integer")

    def boolean(self, name: str) -> bool | None:
        return self._typed(name, bool, "a boolean")

    def struct(self, name: str) -> Fields | None:
        value = self._typed(name, dict, "an object")
        return None if value is None else Fields(value, f"{self.where}{name}.")

    def required_struct(self, name: str) -> Fields:
        found = self.struct(name)
        if found is None:
            raise self._missing(name)
        return found

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self._typed(name, dict, "an object of strings")
        if value is None:
            return None
        for key, item in value.items():
            if not isinstance(item, str):
                raise self._wrong(f"{name}.{key}", "a string", item)
        return dict(value)

    def string_list(self, name: str) -> list[str] | None:
        value = self._typed(name, list, "a list of strings")
        if value is None:
            return None
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self._wrong(f"{name}[{index}]", "a string", item)
        return list(value)

    def _typed(self, name: str, kind: type[T], noun: str) -> T | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._wrong(name, noun, value)
        return value

    def _missing(self, name: str) -> InvalidParameterValueException:
        return InvalidParameterValueException(
            f"1 validation error detected: Value null at '{self.where}{name}' failed to "
            "satisfy constraint: Member must not be null"
        )

    def _wrong(self, name: str, noun: str, value: object) -> InvalidRequestContentException:
        return InvalidRequestContentException(
            f"Could not parse request body into json: {self.where}{name} must be {noun}, got "
            f"{_kind(value)}"
        )


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    for kind, noun in names.items():
        if isinstance(value, kind):
            return noun
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return "null" if value is None else type(value).__name__


def json_reply(data: object, status: int = 200) -> Response:
    """A Lambda API answer: the operation's output shape as JSON."""
    return Response(json.dumps(data).encode("utf-8"), status_code=status, media_type=JSON)
