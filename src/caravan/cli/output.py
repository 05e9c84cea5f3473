"""How the CLI presents results and failures.

Failures are one line on stderr, ``caravan: error: <message>`` (plus ``hint: ...``), never a
traceback; the exit code is the error's: 0 success, 1 something ran and failed (conflicts and an
unreachable server included), 2 bad usage or input (not-found included). ``--json`` output is
the API response exactly. ``error_from_payload`` turns an API error body back into the
``CaravanError`` subclass the server raised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import click

from caravan.errors import CaravanError, DeclarationError, Issue

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# The general class for an unknown reference, by HTTP status (e.g. a newer server's error).
_BY_STATUS = {400: "invalid-input", 404: "not-found", 409: "conflict"}


def _error_classes(root: type[CaravanError] = CaravanError) -> Iterator[type[CaravanError]]:
    """``root`` and all its subclasses, general before specific (breadth first)."""
    queue = [root]
    while queue:
        cls = queue.pop(0)
        yield cls
        queue.extend(cls.__subclasses__())


def error_class(*, reference: str | None, aws_type: str | None) -> type[CaravanError] | None:
    """The class with this ``reference``, else the most general one with this ``aws_type``."""
    classes = list(_error_classes())
    for cls in classes:
        if reference is not None and cls.reference == reference:
            return cls
    for cls in classes:
        if aws_type is not None and cls.aws_type == aws_type.rsplit("#", 1)[-1]:
            return cls
    return None


def error_from_payload(
    payload: Mapping[str, Any], *, http_status: int | None = None
) -> CaravanError:
    """The ``CaravanError`` an API error body describes (native or AWS JSON shape)."""
    reference = payload.get("reference")
    aws_type = payload.get("__type")
    message = str(payload.get("message") or payload.get("Message") or "the server refused")
    hint = payload.get("hint")
    cls = error_class(
        reference=reference if isinstance(reference, str) else None,
        aws_type=aws_type if isinstance(aws_type, str) else None,
    )
    if cls is None and http_status in _BY_STATUS:
        cls = error_class(reference=_BY_STATUS[http_status], aws_type=None)
    error = (cls or CaravanError).__new__(cls or CaravanError)
    # Subclasses build their message from parts; the server already did, so keep its text.
    CaravanError.__init__(error, message, hint=hint if isinstance(hint, str) else None)
    if isinstance(reference, str) and reference != error.reference:
        error.reference = reference  # a reference this CLI does not know, kept for --json
    if isinstance(error, DeclarationError):
        error.issues = [
            Issue(str(i.get("path", "")), str(i.get("rule", "")))
            for i in payload.get("issues") or []
            if isinstance(i, Mapping)
        ]
        error.source = None
    return error


def report_error(error: CaravanError) -> None:
    click.echo(f"caravan: error: {error.message}", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)


def report_unexpected(exc: BaseException) -> None:
    click.echo(f"caravan: error: unexpected {type(exc).__name__}: {exc}", err=True)
    click.echo("hint: set CARAVAN_DEBUG=1 to see the traceback", err=True)


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API response as JSON, exactly."
)
