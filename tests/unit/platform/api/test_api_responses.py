"""Mapping Lambda proxy responses back to HTTP: the valid shapes, and every malformed one -> 502."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from caravan.platform.api.responses import map_response


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_v1_response_with_merged_headers() -> None:
    response = map_response(
        encode(
            {
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "X-One": "a", "X-Both": "single"},
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Both": ["m1", "m2"]},
                "body": "created",
                "isBase64Encoded": False,
            }
        ),
        "1.0",
    )
    assert response.status == 201 and response.body == b"created"
    assert response.header("content-type") == "text/plain"
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert [v for k, v in response.headers if k.lower() == "x-both"] == ["m1", "m2"]  # multi wins
    assert response.header("x-one") == "a"


def test_v1_minimal_response_and_defaults() -> None:
    response = map_response(encode({"statusCode": "404"}), "1.0")
    assert response.status == 404 and response.body == b""
    assert response.header("content-type") == "application/json"


def test_base64_bodies_are_decoded() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    payload = {"statusCode": 200, "body": base64.b64encode(png).decode(), "isBase64Encoded": True}
    for version in ("1.0", "2.0"):
        assert map_response(encode(payload), version).body == png


def test_framing_headers_from_the_function_are_dropped() -> None:
    payload = {
        "statusCode": 200,
        "headers": {"Content-Length": "999", "Connection": "close"},
        "body": "x",
    }
    response = map_response(encode(payload), "1.0")
    assert response.header("content-length") is None and response.header("connection") is None


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        encode("a string"),
        encode([1, 2]),
        encode(None),
        encode({"body": "no status"}),
        encode({"statusCode": True, "body": ""}),
        encode({"statusCode": 99}),
        encode({"statusCode": 600}),
        encode({"statusCode": "abc"}),
        encode({"statusCode": 200.5}),
        encode({"statusCode": 200, "body": {"an": "object"}}),
        encode({"statusCode": 200, "body": 42}),
        encode({"statusCode": 200, "headers": ["a"]}),
        encode({"statusCode": 200, "headers": {"X": {"nested": 1}}}),
        encode({"statusCode": 200, "headers": {"X": None}}),
        encode({"statusCode": 200, "headers": {"X": "a\r\nInjected: yes"}}),
        encode({"statusCode": 200, "headers": {"Bad Name": "x"}}),
        encode({"statusCode": 200, "multiValueHeaders": {"X": "not-a-list"}}),
        encode({"statusCode": 200, "multiValueHeaders": "nope"}),
        encode({"statusCode": 200, "isBase64Encoded": "yes", "body": "x"}),
        encode({"statusCode": 200, "isBase64Encoded": True, "body": "!!!not base64"}),
        encode({"statusCode": 200, "cookies": ["a=1"]}),  # cookies is 2.0 only
        encode({"statusCode": 200, "extra": 1}),
    ],
)
def test_every_malformed_v1_response_is_a_502(payload: bytes) -> None:
    response = map_response(payload, "1.0")
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal server error"}
    assert response.body == b'{"message":"Internal server error"}'  # byte for byte as AWS
    assert response.header("content-type") == "application/json"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        encode({"statusCode": "x"}),
        encode({"statusCode": 200, "cookies": "a=1"}),
        encode({"statusCode": 200, "cookies": [1]}),
        encode({"statusCode": 200, "body": ["x"]}),
        encode({"statusCode": 200, "unknown": True}),
    ],
)
def test_every_malformed_v2_response_is_a_502(payload: bytes) -> None:
    assert map_response(payload, "2.0").status == 502


def test_v2_cookies_become_set_cookie_headers() -> None:
    payload = {
        "statusCode": 200,
        "cookies": ["a=1; Path=/", "b=2"],
        "headers": {"x": "y"},
        "body": "ok",
    }
    response = map_response(encode(payload), "2.0")
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]
    assert response.body == b"ok"


@pytest.mark.parametrize(
    "value", [{"hello": "world"}, ["a", 1], "text", 42, None, {"statusCodeX": 1}]
)
def test_v2_any_json_without_status_code_is_a_200_json_body(value: Any) -> None:
    response = map_response(encode(value), "2.0")
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == value
