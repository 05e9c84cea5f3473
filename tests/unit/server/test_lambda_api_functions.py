"""The function and version operations of the Lambda API on the wire: paths, members, status
codes, paging, S3 code from the artifact store, and what the local platform refuses by name."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from lambda_api_helpers import Api, assert_lambda_error, b64, open_api, package

from caravan.server.lambda_api import PREFIX


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path) as opened:
        yield opened


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def test_create_function_answers_201_with_the_function_configuration(api: Api) -> None:
    response = await api.create(
        MemorySize=256, Timeout=9, Environment={"Variables": {"STAGE": "test"}}, Description="d"
    )
    assert response.status_code == 201
    config = response.json()
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert config["Version"] == "$LATEST"
    assert config["CodeSha256"] == sha(package())
    assert (config["MemorySize"], config["Timeout"], config["Description"]) == (256, 9, "d")
    assert config["Environment"] == {"Variables": {"STAGE": "test"}}
    assert config["Role"] == "arn:aws:iam::000000000000:role/fn"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-RequestId"]


async def test_create_with_publish_answers_version_1(api: Api) -> None:
    response = await api.create(Publish=True)
    assert response.json()["Version"] == "1"


async def test_settings_that_only_shape_aws_hosting_are_accepted(api: Api) -> None:
    response = await api.create(
        TracingConfig={"Mode": "Active"},
        Tags={"team": "a"},
        VpcConfig={"SubnetIds": []},
        Architectures=["arm64"],
        PackageType="Zip",
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"Layers": ["arn:aws:lambda:us-east-1:1:layer:x:1"]}, "Layers"),
        ({"FileSystemConfigs": [{"Arn": "a", "LocalMountPath": "/mnt/x"}]}, "FileSystemConfigs"),
        ({"PackageType": "Image"}, "PackageType"),
        ({"Code": {"ImageUri": "repo/image:1"}}, "Code.ImageUri"),
        ({"Architectures": ["x86_64", "arm64"]}, "Architectures"),
        ({"Code": {"ZipFile": "not base64!"}}, "Code.ZipFile is not valid base64"),
        ({"Code": {}}, "Please provide a source for function code"),
        ({"Code": {"S3Bucket": "b"}}, "Code.S3Key is required"),
        ({"Code": {"ZipFile": b64(package()), "S3Bucket": "b", "S3Key": "k"}}, "Code.ZipFile"),
        ({"Handler": None}, "'Handler'"),
        ({"Runtime": "nodejs18.x"}, "'runtime'"),
        ({"MemorySize": 64}, "'memorySize'"),
        ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "AWS_REGION"),
        ({"FunctionName": "bad name"}, "'functionName'"),
    ],
)
async def test_create_function_refuses_what_it_cannot_honour_by_name(
    api: Api, members: dict[str, object], named: str
) -> None:
    message = assert_lambda_error(
        await api.create(**members), 400, "InvalidParameterValueException"
    )
    assert named in message
    assert (await api.client.get(PREFIX)).json()["Functions"] == []


async def test_a_zip_that_is_no_zip_is_refused(api: Api) -> None:
    response = await api.create(Code={"ZipFile": b64(b"PK\x03\x04 not really a zip")})
    assert_lambda_error(response, 400, "InvalidParameterValueException")


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"MemorySize": "big"}, "MemorySize must be an integer, got a string"),
        ({"Publish": "yes"}, "Publish must be a boolean"),
        ({"Environment": {"Variables": {"A": 1}}}, "Environment.Variables.A must be a string"),
        ({"Code": "zip"}, "Code must be an object"),
        ({"Architectures": "arm64"}, "Architectures must be a list of strings"),
    ],
)
async def test_members_of_the_wrong_json_type_are_named(
    api: Api, members: dict[str, object], named: str
) -> None:
    message = assert_lambda_error(
        await api.create(**members), 400, "InvalidRequestContentException"
    )
    assert named in message


async def test_code_from_s3_is_read_from_the_artifact_store(api: Api) -> None:
    api.store.put_bytes("deploy", "fn/hello.zip", package("s3"))
    response = await api.create(Code={"S3Bucket": "deploy", "S3Key": "fn/hello.zip"})
    assert response.status_code == 201
    assert response.json()["CodeSha256"] == sha(package("s3"))
    missing = await api.client.put(
        f"{PREFIX}/hello/code", json={"S3Bucket": "deploy", "S3Key": "fn/nope.zip"}
    )
    message = assert_lambda_error(missing, 400, "InvalidParameterValueException")
    assert "NoSuchKey" in message and "'fn/nope.zip'" in message
    bad_bucket = await api.client.put(
        f"{PREFIX}/hello/code", json={"S3Bucket": "Bad_Bucket", "S3Key": "k"}
    )
    assert "S3Bucket" in assert_lambda_error(bad_bucket, 400, "InvalidParameterValueException")


async def test_code_from_s3_without_an_artifact_store_says_so(tmp_path: Path) -> None:
    async with open_api(tmp_path, with_store=False) as api:
        response = await api.create(Code={"S3Bucket": "deploy", "S3Key": "fn/hello.zip"})
        message = assert_lambda_error(response, 400, "InvalidParameterValueException")
        assert "no artifact store" in message and "Code.ZipFile" in message


async def test_get_function_and_its_configuration_by_qualifier(api: Api) -> None:
    await api.create(Publish=True)
    await api.client.post(f"{PREFIX}/hello/aliases", json={"Name": "live", "FunctionVersion": "1"})
    got = (await api.client.get(f"{PREFIX}/hello", params={"Qualifier": "live"})).json()
    assert got["Configuration"]["Version"] == "1"
    assert got["Configuration"]["FunctionArn"].endswith(":function:hello:live")
    assert got["Code"]["RepositoryType"] == "S3"
    config = (await api.client.get(f"{PREFIX}/hello/configuration")).json()
    assert config["Version"] == "$LATEST"
    arn = quote("arn:aws:lambda:us-east-1:000000000000:function:hello:1", safe="")
    by_arn = (await api.client.get(f"{PREFIX}/{arn}/configuration")).json()
    assert by_arn["Version"] == "1"
    bad = await api.client.get(f"{PREFIX}/hello", params={"Qualifier": "a b"})
    assert "'qualifier'" in assert_lambda_error(bad, 400, "InvalidParameterValueException")


async def test_update_configuration_is_guarded_by_revision_id(api: Api) -> None:
    revision = (await api.create()).json()["RevisionId"]
    changed = await api.client.put(
        f"{PREFIX}/hello/configuration",
        json={"Timeout": 30, "Environment": {"Variables": {"KEY": "v"}}, "RevisionId": revision},
    )
    assert changed.status_code == 200
    assert changed.json()["Timeout"] == 30 and changed.json()["RevisionId"] != revision
    stale = await api.client.put(
        f"{PREFIX}/hello/configuration", json={"Timeout": 5, "RevisionId": revision}
    )
    assert "Revision Id" in assert_lambda_error(stale, 412, "PreconditionFailedException")
    cleared = await api.client.put(f"{PREFIX}/hello/configuration", json={"Environment": {}})
    assert cleared.json()["Environment"] == {"Variables": {}}
    assert cleared.json()["Timeout"] == 30


async def test_update_code_publish_and_dry_run(api: Api) -> None:
    await api.create()
    dry = await api.client.put(
        f"{PREFIX}/hello/code", json={"ZipFile": b64(package("two")), "DryRun": True}
    )
    assert dry.json()["CodeSha256"] == sha(package())  # nothing changed
    published = await api.client.put(
        f"{PREFIX}/hello/code", json={"ZipFile": b64(package("two")), "Publish": True}
    )
    assert published.status_code == 200
    assert published.json()["Version"] == "1"
    assert published.json()["CodeSha256"] == sha(package("two"))
    qualified = await api.client.put(f"{PREFIX}/hello:1/code", json={"ZipFile": b64(package())})
    assert_lambda_error(qualified, 400, "InvalidParameterValueException")


async def test_publish_version_answers_201_and_is_idempotent(api: Api) -> None:
    await api.create()
    first = await api.client.post(f"{PREFIX}/hello/versions", json={"Description": "first"})
    assert first.status_code == 201 and first.json()["Version"] == "1"
    again = await api.client.post(f"{PREFIX}/hello/versions")
    assert again.json()["Version"] == "1"
    wrong = await api.client.post(f"{PREFIX}/hello/versions", json={"CodeSha256": "AAAA"})
    assert "CodeSHA256" in assert_lambda_error(wrong, 400, "InvalidParameterValueException")


async def test_list_versions_pages_with_marker_and_max_items(api: Api) -> None:
    await api.create(Publish=True)
    for tag in ("b", "c", "d"):
        await api.client.put(
            f"{PREFIX}/hello/code", json={"ZipFile": b64(package(tag)), "Publish": True}
        )
    seen: list[str] = []
    marker: str | None = None
    pages = 0
    while True:
        params = {"MaxItems": "2", **({"Marker": marker} if marker else {})}
        body = (await api.client.get(f"{PREFIX}/hello/versions", params=params)).json()
        seen += [v["Version"] for v in body["Versions"]]
        pages += 1
        marker = body.get("NextMarker")
        if marker is None:
            break
    assert seen == ["$LATEST", "1", "2", "3", "4"] and pages == 3
    bad = await api.client.get(f"{PREFIX}/hello/versions", params={"Marker": "garbage"})
    assert "Marker" in assert_lambda_error(bad, 400, "InvalidParameterValueException")
    zero = await api.client.get(f"{PREFIX}/hello/versions", params={"MaxItems": "0"})
    assert "'maxItems'" in assert_lambda_error(zero, 400, "InvalidParameterValueException")


async def test_a_marker_survives_entries_removed_before_it(api: Api) -> None:
    for name in ("a", "b", "c", "d"):
        await api.create(name)
    first = (await api.client.get(PREFIX, params={"MaxItems": "2"})).json()
    assert [f["FunctionName"] for f in first["Functions"]] == ["a", "b"]
    await api.client.delete(f"{PREFIX}/a")
    rest = (await api.client.get(PREFIX, params={"Marker": first["NextMarker"]})).json()
    assert [f["FunctionName"] for f in rest["Functions"]] == ["c", "d"]
    assert "NextMarker" not in rest


async def test_list_functions_with_every_version(api: Api) -> None:
    await api.create("a", Publish=True)
    await api.create("b")
    listed = (await api.client.get(f"{PREFIX}/", params={"FunctionVersion": "ALL"})).json()
    assert [(f["FunctionName"], f["Version"]) for f in listed["Functions"]] == [
        ("a", "$LATEST"),
        ("a", "1"),
        ("b", "$LATEST"),
    ]
    bad = await api.client.get(PREFIX, params={"FunctionVersion": "SOME"})
    assert_lambda_error(bad, 400, "InvalidParameterValueException")


async def test_delete_function_answers_204_then_404(api: Api) -> None:
    await api.create(Publish=True)
    refused = await api.client.delete(f"{PREFIX}/hello", params={"Qualifier": "$LATEST"})
    assert "$LATEST" in assert_lambda_error(refused, 400, "InvalidParameterValueException")
    one = await api.client.delete(f"{PREFIX}/hello", params={"Qualifier": "1"})
    assert "not supported" in assert_lambda_error(one, 400, "InvalidParameterValueException")
    missing = await api.client.delete(f"{PREFIX}/hello", params={"Qualifier": "7"})
    assert_lambda_error(missing, 404, "ResourceNotFoundException")
    deleted = await api.client.delete(f"{PREFIX}/hello")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await api.client.delete(f"{PREFIX}/hello")
    assert "Function not found" in assert_lambda_error(gone, 404, "ResourceNotFoundException")
