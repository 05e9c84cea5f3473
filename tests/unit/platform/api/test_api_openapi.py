"""Loading API definitions: OpenAPI 3 and Swagger 2 with API Gateway's extensions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caravan.errors import InvalidInputError
from caravan.platform.api import ApiDefinitionError, load_definition
from caravan.platform.api.openapi import parse_function_uri
from caravan.platform.api.routing import allowed_methods, match_route

ARN_URI = (
    "arn:aws:apigateway:us-west-2:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-west-2:123456789012:function:dromedary:${stageVariables.alias}/invocations"
)


def proxy(uri: str = ARN_URI, **more: object) -> dict[str, object]:
    return {
        "x-amazon-apigateway-integration": {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "uri": uri,
            **more,
        }
    }


OPENAPI3_YAML = f"""
openapi: 3.0.1
info:
  title: dromedary
paths:
  /:
    get:
      x-amazon-apigateway-integration:
        type: AWS_PROXY
        httpMethod: POST
        uri: {ARN_URI}
  /data:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: {ARN_URI}
        payloadFormatVersion: "2.0"
        timeoutInMillis: 5000
  /items/{{id}}:
    parameters: [{{name: id, in: path, required: true}}]
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-integration:
        type: aws_proxy
        uri: items:live
  /files/{{proxy+}}:
    get:
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: files}}
"""


def test_openapi3_yaml_gives_routes_targets_and_settings() -> None:
    definition = load_definition(OPENAPI3_YAML)
    assert definition.title == "dromedary"
    keys = {route.route_key: route for route in definition.routes}
    assert set(keys) == {"GET /", "GET /data", "ANY /items/{id}", "GET /files/{proxy+}"}
    data = keys["GET /data"].integration
    assert data.payload_format_version == "2.0" and data.timeout_ms == 5000
    assert data.target({"alias": "test"}) == ("dromedary", "test")
    assert keys["GET /"].integration.payload_format_version == "1.0"
    assert keys["GET /"].integration.timeout_ms == 29_000
    assert keys["ANY /items/{id}"].integration.target({}) == ("items", "live")
    assert keys["GET /files/{proxy+}"].integration.target({}) == ("files", None)
    assert definition.stage_variables == {"alias"}
    assert definition.kind == "HTTP"  # one integration uses payload 2.0


def test_swagger2_json_document_and_file_load_the_same() -> None:
    document = {
        "swagger": "2.0",
        "info": {"title": "seed"},
        "paths": {"/{subpath}": {"get": proxy()}},
    }
    text = json.dumps(document)
    definition = load_definition(text)
    assert [r.route_key for r in definition.routes] == ["GET /{subpath}"]
    assert definition.kind == "REST"
    assert load_definition(document) == definition
    assert load_definition(text.encode()).routes == definition.routes


def test_a_file_is_read_and_named_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "swagger.json"
    path.write_text(json.dumps({"swagger": "2.0", "paths": {"/a": {"get": {}}}}))
    with pytest.raises(ApiDefinitionError) as caught:
        load_definition(path)
    assert str(path) in caught.value.message
    with pytest.raises(ApiDefinitionError, match="cannot read"):
        load_definition(tmp_path / "missing.yaml")


def test_unsupported_integration_type_is_an_error_naming_the_path() -> None:
    document = {"openapi": "3.0.1", "paths": {"/data": {"get": proxy(), "post": proxy()}}}
    document["paths"]["/data"]["post"]["x-amazon-apigateway-integration"]["type"] = "http_proxy"
    with pytest.raises(ApiDefinitionError) as caught:
        load_definition(document)
    error = caught.value
    assert isinstance(error, InvalidInputError) and error.exit_code == 2
    assert [i.path for i in error.issues] == [
        "paths./data.post.x-amazon-apigateway-integration.type"
    ]
    assert "http_proxy" in error.issues[0].rule and "aws_proxy" in error.issues[0].rule


def test_every_problem_is_reported_at_once_with_its_field_path() -> None:
    document = {
        "openapi": "3.0.1",
        "paths": {
            "/data": {"get": proxy(uri="arn:aws:s3:::bucket/key")},
            "/b": {"get": proxy(httpMethod="GET", payloadFormatVersion="3.0")},
            "/c": {"get": {"summary": "no integration"}},
            "/{a+}/x": {"get": proxy()},
            "/t": {"get": proxy(timeoutInMillis=10)},
            "/u": {"get": proxy(uri="fn:${stageVariables.bad-name}")},
        },
    }
    with pytest.raises(ApiDefinitionError) as caught:
        load_definition(document)
    paths = [i.path for i in caught.value.issues]
    assert paths == [
        "paths./data.get.x-amazon-apigateway-integration.uri",
        "paths./b.get.x-amazon-apigateway-integration.httpMethod",
        "paths./b.get.x-amazon-apigateway-integration.payloadFormatVersion",
        "paths./c.get.x-amazon-apigateway-integration",
        "paths./{a+}/x",
        "paths./t.get.x-amazon-apigateway-integration.timeoutInMillis",
        "paths./u.get.x-amazon-apigateway-integration.uri",
    ]
    assert caught.value.to_dict()["issues"][0]["path"] == paths[0]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("{not json", "not valid JSON or YAML"),
        ("- a list", "must be a mapping"),
        ('{"openapi": "3.0.1"}', "non-empty mapping"),
        ('{"paths": {"/a": {"get": {}}}}', "openapi: 3.x"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(text: str, rule: str) -> None:
    with pytest.raises(ApiDefinitionError, match=rule):
        load_definition(text)


def test_clashing_templates_are_refused() -> None:
    document = {
        "openapi": "3.0.1",
        "paths": {"/a/{x}": {"get": proxy()}, "/a/{y}": {"get": proxy()}},
    }
    with pytest.raises(ApiDefinitionError, match=r"clashes with '/a/\{x\}'"):
        load_definition(document)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("dromedary", ("dromedary", None)),
        ("dromedary:prod", ("dromedary", "prod")),
        ("dromedary:7", ("dromedary", "7")),
        ("arn:aws:lambda:eu-west-1:123456789012:function:dromedary", ("dromedary", None)),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:dromedary:$LATEST",
            ("dromedary", "$LATEST"),
        ),
        (ARN_URI.replace("${stageVariables.alias}", "blue"), ("dromedary", "blue")),
    ],
)
def test_function_uris_in_every_accepted_form(uri: str, expected: tuple[str, str | None]) -> None:
    assert parse_function_uri(uri) == expected


def test_stage_variables_substitute_anywhere_in_the_uri() -> None:
    uri = (
        "arn:aws:apigateway:${stageVariables.region}:lambda:path/2015-03-31/functions/arn:aws:lambda:"
        "${stageVariables.region}:123456789012:function:${stageVariables.fn}:${stageVariables.alias}"
        "/invocations"
    )
    definition = load_definition({"openapi": "3.0.1", "paths": {"/": {"get": proxy(uri=uri)}}})
    integration = definition.routes[0].integration
    assert integration.stage_variables == {"region", "fn", "alias"}
    variables = {"region": "us-east-1", "fn": "app-test", "alias": "live"}
    assert integration.target(variables) == ("app-test", "live")


def test_routes_match_most_specific_first_with_path_parameters() -> None:
    document = {
        "openapi": "3.0.1",
        "paths": {
            "/": {"get": proxy(uri="root")},
            "/items/special": {"get": proxy(uri="special")},
            "/items/{id}": {
                "get": proxy(uri="item"),
                "x-amazon-apigateway-any-method": proxy(uri="anyitem"),
            },
            "/{proxy+}": {"x-amazon-apigateway-any-method": proxy(uri="greedy")},
        },
    }
    definition = load_definition(document)

    def target(method: str, path: str) -> tuple[str | None, dict[str, str]]:
        match = match_route(definition, method, path)
        if match is None:
            return None, {}
        return match.route.integration.target({})[0], match.path_parameters

    assert target("GET", "/") == ("root", {})
    assert target("GET", "/items/special") == ("special", {})
    assert target("GET", "/items/42/") == ("item", {"id": "42"})
    assert target("DELETE", "/items/42") == ("anyitem", {"id": "42"})
    assert target("GET", "/items/a%20b") == ("item", {"id": "a b"})
    assert target("GET", "/a/b/c") == ("greedy", {"proxy": "a/b/c"})
    assert target("POST", "/") == (None, {})  # a greedy parameter needs at least one segment
    assert allowed_methods(definition, "/items/1") == {"GET", "ANY"}


def test_default_route_catches_what_nothing_else_does() -> None:
    document = {
        "openapi": "3.0.1",
        "paths": {
            "$default": {"x-amazon-apigateway-any-method": proxy(uri="fallback")},
            "/a": {"get": proxy(uri="a")},
        },
    }
    definition = load_definition(document)
    match = match_route(definition, "PUT", "/x/y")
    assert match is not None and match.route.route_key == "$default"
    assert match_route(definition, "GET", "/a").route.route_key == "GET /a"  # type: ignore[union-attr]
