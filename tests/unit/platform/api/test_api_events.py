"""Proxy events compared field by field with AWS's documented examples (fixtures/).

The fixtures are the examples of "Input format of a Lambda function for proxy integration"
(payload 1.0) and "Working with AWS Lambda proxy integrations for HTTP APIs" (payload 2.0),
made self-consistent where the published examples contradict the documented rules: the
single-value query parameter is the last value, the time matches the epoch, and the headers
include the User-Agent and X-Forwarded-* headers API Gateway adds.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caravan.platform.api.events import (
    ApiRequest,
    StageContext,
    proxy_event_v1,
    proxy_event_v2,
    request_time,
)
from caravan.platform.api.openapi import Integration, Route, Segment
from caravan.platform.api.routing import RouteMatch

FIXTURES = Path(__file__).parent / "fixtures"
INTEGRATION = Integration("fn")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def request(**changes: Any) -> ApiRequest:
    base: dict[str, Any] = {
        "method": "GET",
        "path": "/my/path",
        "full_path": "/my/path",
        "query_string": "parameter1=value1&parameter1=value2&parameter2=value",
        "headers": [
            ("header1", "value1"),
            ("header2", "value1"),
            ("header2", "value2"),
            ("user-agent", "user-agent"),
        ],
        "body": b"Hello from Lambda!",
        "source_ip": "192.0.2.1",
        "scheme": "https",
        "port": 443,
        "host": "id.execute-api.us-east-1.amazonaws.com",
        "time": datetime(2020, 3, 4, 19, 15, 17, 135000, tzinfo=UTC),
        "request_id": "id=",
    }
    base.update(changes)
    return ApiRequest(**base)


def test_payload_1_0_event_matches_the_documented_example() -> None:
    route = Route("GET", "/my/path", INTEGRATION, (Segment("my"), Segment("path")))
    event = proxy_event_v1(request(), RouteMatch(route, {}), StageContext("id", "$default", {}))
    expected = fixture("aws_proxy_event_v1.json")
    generated = event["requestContext"]
    assert len(generated["extendedRequestId"]) == 16 and generated["extendedRequestId"].endswith(
        "="
    )
    assert len(generated["resourceId"]) == 6
    expected["requestContext"]["extendedRequestId"] = generated["extendedRequestId"]
    expected["requestContext"]["resourceId"] = generated["resourceId"]
    assert list(event) == list(expected)
    for key in expected:
        assert event[key] == expected[key], key


def test_payload_2_0_event_matches_the_documented_example() -> None:
    route = Route("ANY", "$default", INTEGRATION)
    moment = datetime(2020, 3, 4, 19, 3, 58, 390000, tzinfo=UTC)
    req = request(
        method="POST",
        headers=[
            ("header1", "value1"),
            ("header2", "value1"),
            ("header2", "value2"),
            ("cookie", "cookie1; cookie2"),
            ("user-agent", "agent"),
        ],
        body=b"Hello from Lambda",
        time=moment,
        request_id="id",
    )
    stage = StageContext(
        "api-id", "$default", {"stageVariable1": "value1", "stageVariable2": "value2"}
    )
    event = proxy_event_v2(req, RouteMatch(route, {"parameter1": "value1"}), stage)
    expected = fixture("aws_proxy_event_v2.json")
    assert list(event) == list(expected)
    for key in expected:
        assert event[key] == expected[key], key


def test_absent_parts_are_null_in_1_0_and_left_out_in_2_0() -> None:
    route = Route("GET", "/", INTEGRATION)
    bare = request(query_string="", headers=[], body=b"")
    v1 = proxy_event_v1(bare, RouteMatch(route, {}), StageContext("a", "test", {}))
    assert v1["queryStringParameters"] is None
    assert v1["multiValueQueryStringParameters"] is None
    assert v1["pathParameters"] is None and v1["stageVariables"] is None
    assert v1["body"] is None and v1["isBase64Encoded"] is False
    assert v1["requestContext"]["identity"]["userAgent"] is None
    v2 = proxy_event_v2(bare, RouteMatch(route, {}), StageContext("a", "test", {}))
    for absent in ("cookies", "queryStringParameters", "body", "pathParameters", "stageVariables"):
        assert absent not in v2
    assert v2["rawQueryString"] == "" and v2["routeKey"] == "GET /"


def test_binary_bodies_are_base64_and_text_bodies_are_not() -> None:
    route = RouteMatch(Route("POST", "/up", INTEGRATION), {})
    stage = StageContext("a", "test", {})
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    binary = request(body=png, headers=[("content-type", "image/png")])
    for build in (proxy_event_v1, proxy_event_v2):
        event = build(binary, route, stage)
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == png
    text = request(body='{"é": 1}'.encode(), headers=[("content-type", "application/json")])
    event = proxy_event_v1(text, route, stage)
    assert event["body"] == '{"é": 1}' and event["isBase64Encoded"] is False
    invalid_utf8 = request(body=b"\xff\xfe", headers=[("content-type", "text/plain")])
    assert proxy_event_v2(invalid_utf8, route, stage)["isBase64Encoded"] is True


def test_path_parameters_stage_variables_and_paths_for_a_mounted_api() -> None:
    route = Route("GET", "/items/{id}", INTEGRATION, (Segment("items"), Segment("{id}", "id")))
    req = request(path="/items/a%20b", full_path="/apis/shop/test/items/a%20b", query_string="")
    stage = StageContext("shopid", "test", {"alias": "test"})
    v1 = proxy_event_v1(req, RouteMatch(route, {"id": "a b"}), stage)
    assert v1["resource"] == "/items/{id}" and v1["path"] == "/items/a b"
    assert v1["pathParameters"] == {"id": "a b"}
    assert v1["stageVariables"] == {"alias": "test"}
    assert v1["requestContext"]["path"] == "/apis/shop/test/items/a%20b"
    assert v1["requestContext"]["stage"] == "test"
    v2 = proxy_event_v2(req, RouteMatch(route, {"id": "a b"}), stage)
    assert v2["rawPath"] == "/items/a%20b" and v2["routeKey"] == "GET /items/{id}"
    assert v2["requestContext"]["routeKey"] == "GET /items/{id}"


def test_forwarded_for_appends_the_client_to_an_existing_chain() -> None:
    req = request(headers=[("x-forwarded-for", "203.0.113.9")], source_ip="10.0.0.2")
    event = proxy_event_v2(
        req, RouteMatch(Route("GET", "/", INTEGRATION), {}), StageContext("a", "s", {})
    )
    assert event["headers"]["x-forwarded-for"] == "203.0.113.9, 10.0.0.2"


def test_request_time_is_english_and_utc_whatever_the_locale() -> None:
    moment = datetime(2026, 12, 1, 8, 5, 9, tzinfo=UTC)
    assert request_time(moment) == "01/Dec/2026:08:05:09 +0000"
