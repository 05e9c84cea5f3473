"""API error payloads come back as the CaravanError subclass the server raised, and present
themselves as one line with the right exit code."""

from __future__ import annotations

import pytest

from caravan.cli.output import error_from_payload
from caravan.errors import (
    CaravanError,
    ConflictError,
    DeclarationError,
    InvalidInputError,
    Issue,
    NotFoundError,
    PipelineNotFoundError,
    StageNotRetryableError,
)


@pytest.mark.parametrize(
    "error",
    [
        PipelineNotFoundError("pipeline 'x' does not exist"),
        StageNotRetryableError("nothing failed", hint="look at the board"),
        InvalidInputError("bad"),
        DeclarationError([Issue("stages", "too few"), Issue("name", "missing")], source="p.yml"),
    ],
)
def test_native_payload_round_trips_to_the_same_class(error: CaravanError) -> None:
    back = error_from_payload(error.to_dict())
    assert type(back) is type(error)
    assert back.message == error.message
    assert back.hint == error.hint
    assert back.exit_code == error.exit_code
    assert back.to_dict() == error.to_dict()


def test_aws_payload_maps_by_exception_type() -> None:
    back = error_from_payload(
        {"__type": "com.amazonaws.codepipeline#PipelineNotFoundException", "message": "gone"}
    )
    assert type(back) is PipelineNotFoundError
    # Several classes share ValidationException: the most general one is chosen.
    assert type(error_from_payload({"__type": "ValidationException", "message": "x"})) is (
        InvalidInputError
    )


@pytest.mark.parametrize(
    ("status", "cls", "exit_code"),
    [
        (400, InvalidInputError, 2),
        (404, NotFoundError, 2),
        (409, ConflictError, 1),
        (500, CaravanError, 1),
    ],
)
def test_unknown_reference_falls_back_by_http_status(
    status: int, cls: type, exit_code: int
) -> None:
    back = error_from_payload(
        {"reference": "from-the-future", "message": "new"}, http_status=status
    )
    assert type(back) is cls
    assert back.exit_code == exit_code
    assert back.reference == "from-the-future"


def test_declaration_issues_survive() -> None:
    payload = DeclarationError([Issue("stages[0].name", "is required")]).to_dict()
    back = error_from_payload(payload)
    assert isinstance(back, DeclarationError)
    assert back.issues == [Issue("stages[0].name", "is required")]
