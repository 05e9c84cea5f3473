"""CORS declared with x-amazon-apigateway-cors: configuration checks and the headers it implies."""

from __future__ import annotations

import pytest

from caravan.errors import Issue
from caravan.platform.api.cors import CorsConfig, parse_cors, without_cors


def parse(value: object) -> tuple[CorsConfig | None, list[Issue]]:
    issues: list[Issue] = []
    return parse_cors(value, "x-amazon-apigateway-cors", issues), issues


def test_configuration_is_read_with_the_http_api_keys() -> None:
    config, issues = parse(
        {
            "allowOrigins": ["https://app.example.com"],
            "allowMethods": ["GET", "POST"],
            "allowHeaders": ["content-type", "x-api-key"],
            "exposeHeaders": ["x-request-id"],
            "maxAge": 600,
            "allowCredentials": True,
        }
    )
    assert issues == []
    assert config == CorsConfig(
        ("https://app.example.com",),
        ("GET", "POST"),
        ("content-type", "x-api-key"),
        ("x-request-id",),
        600,
        True,
    )


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("yes", "x-amazon-apigateway-cors"),
        ({"allowOrigin": ["*"]}, "x-amazon-apigateway-cors.allowOrigin"),
        ({"allowOrigins": [1]}, "x-amazon-apigateway-cors.allowOrigins"),
        ({"maxAge": "ten"}, "x-amazon-apigateway-cors.maxAge"),
        ({"allowCredentials": "true"}, "x-amazon-apigateway-cors.allowCredentials"),
        (
            {"allowOrigins": ["*"], "allowCredentials": True},
            "x-amazon-apigateway-cors.allowOrigins",
        ),
    ],
)
def test_bad_settings_are_reported_at_their_path(value: object, path: str) -> None:
    config, issues = parse(value)
    assert config is None
    assert [issue.path for issue in issues] == [path]


def test_preflight_for_an_allowed_origin_lists_what_is_allowed() -> None:
    config = CorsConfig(("https://app.example.com",), ("GET", "POST"), ("content-type",), (), 300)
    headers = dict(config.preflight_headers("https://app.example.com", "POST", "content-type"))
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "content-type"
    assert headers["access-control-max-age"] == "300"
    assert "access-control-allow-credentials" not in headers


def test_preflight_refuses_unknown_origins_and_methods() -> None:
    config = CorsConfig(("https://app.example.com",), ("GET",))
    assert config.preflight_headers("https://evil.example", "GET", "") == []
    assert config.preflight_headers("https://app.example.com", "DELETE", "") == []


def test_wildcards_echo_what_was_asked() -> None:
    config = CorsConfig(("*",), ("*",), ("*",))
    headers = dict(config.preflight_headers("http://x.test", "PATCH", "x-a,x-b"))
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "PATCH"
    assert headers["access-control-allow-headers"] == "x-a,x-b"


def test_subdomain_wildcard_origin_and_credentials() -> None:
    config = CorsConfig(("https://*.example.com",), ("GET",), (), ("x-id",), None, True)
    headers = dict(config.response_headers("https://Blue.Example.com"))
    assert headers["access-control-allow-origin"] == "https://Blue.Example.com"
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-expose-headers"] == "x-id"
    assert config.response_headers("https://example.com.evil.test") == []
    assert config.response_headers(None) == []


def test_function_cors_headers_are_replaced_by_the_configuration() -> None:
    headers = [("Access-Control-Allow-Origin", "*"), ("Content-Type", "text/plain")]
    assert without_cors(headers) == [("Content-Type", "text/plain")]
