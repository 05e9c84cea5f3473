"""The function registry: Lambda's control-plane rules, guards and durability (no workers)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from caravan.artifacts.zipfiles import zip_files
from caravan.errors import ArchiveError, ConflictError, InvalidInputError, NotFoundError
from caravan.platform.functions import (
    FunctionRegistry,
    InvalidParameterValueException,
    PreconditionFailedException,
    RegistryEvent,
    ResourceConflictException,
    ResourceNotFoundException,
)

V1 = zip_files({"app.py": b"def handler(event, context):\n    return 'one'\n"})
V2 = zip_files({"app.py": b"def handler(event, context):\n    return 'two'\n"})


@pytest.fixture
def registry(tmp_path: Path) -> FunctionRegistry:
    return FunctionRegistry(tmp_path)


def make(registry: FunctionRegistry, name: str = "hello", **kwargs: object) -> dict:
    kwargs.setdefault("handler", "app.handler")
    return registry.create_function(name, code=V1, **kwargs)  # type: ignore[arg-type]


def test_create_function_answers_lambda_function_configuration(registry: FunctionRegistry) -> None:
    config = make(registry, environment={"STAGE": "test"}, memory_size=256, timeout=10)
    assert config["FunctionName"] == "hello"
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert config["Version"] == "$LATEST"
    assert config["Runtime"] == "python3.11"
    assert config["Handler"] == "app.handler"
    assert config["CodeSize"] == len(V1)
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(V1).digest()).decode()
    assert config["MemorySize"] == 256 and config["Timeout"] == 10
    assert config["Environment"] == {"Variables": {"STAGE": "test"}}
    assert config["State"] == "Active" and config["LastUpdateStatus"] == "Successful"
    assert len(config["LastModified"]) == len("2026-11-26T17:41:11.000+0000")
    assert config["LastModified"].endswith("+0000")


def test_create_with_publish_answers_version_1(registry: FunctionRegistry) -> None:
    config = make(registry, publish=True)
    assert config["Version"] == "1"
    assert config["FunctionArn"].endswith(":function:hello:1")


def test_creating_an_existing_function_is_a_conflict(registry: FunctionRegistry) -> None:
    make(registry)
    with pytest.raises(ResourceConflictException) as caught:
        make(registry)
    assert isinstance(caught.value, ConflictError)
    assert caught.value.aws_type == "ResourceConflictException"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"memory_size": 64}, "memorySize"),
        ({"memory_size": 10241}, "memorySize"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 901}, "timeout"),
        ({"runtime": "nodejs18.x"}, "runtime"),
        ({"handler": "app handler"}, "handler"),
        ({"environment": {"AWS_REGION": "eu-west-1"}}, "AWS_REGION"),
        ({"environment": {"1BAD": "x"}}, "environment"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    registry: FunctionRegistry, kwargs: dict, named: str
) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        make(registry, **kwargs)
    assert isinstance(caught.value, InvalidInputError)
    assert named in caught.value.message
    assert registry.list_functions() == []


def test_bad_function_name_is_refused(registry: FunctionRegistry) -> None:
    with pytest.raises(InvalidParameterValueException, match="functionName"):
        make(registry, name="no spaces")


def test_publish_is_idempotent_until_code_or_configuration_changes(
    registry: FunctionRegistry,
) -> None:
    make(registry)
    assert registry.publish_version("hello")["Version"] == "1"
    assert registry.publish_version("hello")["Version"] == "1"
    registry.update_function_configuration("hello", description="only a label")
    assert registry.publish_version("hello")["Version"] == "1"
    registry.update_function_code("hello", V2)
    assert registry.publish_version("hello")["Version"] == "2"
    registry.update_function_configuration("hello", timeout=30)
    assert registry.publish_version("hello")["Version"] == "3"
    versions = [v["Version"] for v in registry.list_versions_by_function("hello")]
    assert versions == ["$LATEST", "1", "2", "3"]


def test_publish_code_sha256_guard_names_both_hashes(registry: FunctionRegistry) -> None:
    latest = make(registry)
    stale = base64.b64encode(hashlib.sha256(V2).digest()).decode()
    with pytest.raises(InvalidParameterValueException) as caught:
        registry.publish_version("hello", code_sha256=stale)
    assert stale in caught.value.message and latest["CodeSha256"] in caught.value.message
    assert registry.publish_version("hello", code_sha256=latest["CodeSha256"])["Version"] == "1"


def test_publish_revision_guard(registry: FunctionRegistry) -> None:
    first = make(registry)
    registry.update_function_configuration("hello", memory_size=512)
    with pytest.raises(PreconditionFailedException) as caught:
        registry.publish_version("hello", revision_id=first["RevisionId"])
    assert caught.value.http_status == 412
    current = registry.get_function_configuration("hello")["RevisionId"]
    assert registry.publish_version("hello", revision_id=current)["MemorySize"] == 512


def test_update_guards_and_revision_changes_on_every_change(registry: FunctionRegistry) -> None:
    first = make(registry)
    second = registry.update_function_code("hello", V2, revision_id=first["RevisionId"])
    assert second["RevisionId"] != first["RevisionId"]
    assert second["CodeSha256"] != first["CodeSha256"]
    with pytest.raises(PreconditionFailedException):
        registry.update_function_configuration("hello", timeout=5, revision_id=first["RevisionId"])
    third = registry.update_function_configuration("hello", environment={"AB": "b"})
    assert third["RevisionId"] != second["RevisionId"]


def test_published_versions_are_immutable(registry: FunctionRegistry) -> None:
    make(registry, environment={"STAGE": "one"})
    v1 = registry.publish_version("hello")
    code_dir = registry.version("hello", "1").code_dir
    registry.update_function_code("hello", V2)
    registry.update_function_configuration("hello", environment={"STAGE": "two"})
    registry.publish_version("hello")
    assert registry.get_function_configuration("hello", "1") == v1
    assert (code_dir / "app.py").read_text().endswith("return 'one'\n")
    assert registry.version("hello", "2").code_dir != code_dir
    assert not (code_dir / "app.py").stat().st_mode & 0o222  # extracted read-only


def test_get_function_accepts_qualifiers_arns_and_aliases(registry: FunctionRegistry) -> None:
    make(registry, publish=True)
    registry.create_alias("hello", "live", "1")
    arn = "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert registry.get_function(arn)["Configuration"]["Version"] == "$LATEST"
    by_alias = registry.get_function("hello:live")["Configuration"]
    assert by_alias["Version"] == "1" and by_alias["FunctionArn"] == f"{arn}:live"
    assert registry.get_function(f"{arn}:1")["Configuration"]["FunctionArn"] == f"{arn}:1"
    assert registry.get_function("hello", "$LATEST")["Configuration"]["FunctionArn"].endswith(
        ":$LATEST"
    )
    location = registry.get_function("hello")["Code"]["Location"]
    assert location.startswith("file://") and location.endswith("code.zip")
    with pytest.raises(ResourceNotFoundException) as caught:
        registry.get_function("hello", "7")
    assert isinstance(caught.value, NotFoundError)
    assert "hello:7" in caught.value.message


def test_alias_shape_and_routing_rules(registry: FunctionRegistry) -> None:
    make(registry, publish=True)
    registry.update_function_code("hello", V2, publish=True)
    alias = registry.create_alias(
        "hello", "live", "1", routing_config={"AdditionalVersionWeights": {"2": 0.1}}
    )
    assert alias["AliasArn"] == "arn:aws:lambda:us-east-1:000000000000:function:hello:live"
    assert alias["Name"] == "live" and alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    assert alias["RevisionId"]
    refused = [
        {"function_version": "1", "routing_config": {"AdditionalVersionWeights": {"2": 1.5}}},
        {"function_version": "1", "routing_config": {"AdditionalVersionWeights": {"2": -0.1}}},
        {"function_version": "$LATEST", "routing_config": {"AdditionalVersionWeights": {"2": 0.5}}},
        {"function_version": "2", "routing_config": {"AdditionalVersionWeights": {"2": 0.5}}},
        {
            "function_version": "1",
            "routing_config": {"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}},
        },
    ]
    for kwargs in refused:
        with pytest.raises(InvalidParameterValueException):
            registry.create_alias("hello", "other", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ResourceNotFoundException):  # version 9 was never published
        registry.create_alias(
            "hello", "other", "1", routing_config={"AdditionalVersionWeights": {"9": 0.5}}
        )
    with pytest.raises(InvalidParameterValueException):
        registry.create_alias("hello", "123", "1")  # all digits would read as a version
    with pytest.raises(ResourceConflictException):
        registry.create_alias("hello", "live", "2")
    assert registry.create_alias("hello", "dev", "$LATEST")["FunctionVersion"] == "$LATEST"


def test_update_alias_is_compare_and_swap(registry: FunctionRegistry) -> None:
    make(registry, publish=True)
    registry.update_function_code("hello", V2, publish=True)
    created = registry.create_alias("hello", "live", "1")
    moved = registry.update_alias(
        "hello",
        "live",
        routing_config={"AdditionalVersionWeights": {"2": 0.25}},
        revision_id=created["RevisionId"],
    )
    assert moved["RevisionId"] != created["RevisionId"]
    with pytest.raises(PreconditionFailedException):
        registry.update_alias(
            "hello", "live", function_version="2", revision_id=created["RevisionId"]
        )
    assert registry.get_alias("hello", "live") == moved
    done = registry.update_alias(
        "hello",
        "live",
        function_version="2",
        routing_config={"AdditionalVersionWeights": {}},
        revision_id=moved["RevisionId"],
    )
    assert done["FunctionVersion"] == "2"
    assert done["RoutingConfig"] == {"AdditionalVersionWeights": {}}
    assert [a["Name"] for a in registry.list_aliases("hello", function_version="2")] == ["live"]
    registry.delete_alias("hello", "live")
    with pytest.raises(ResourceNotFoundException):
        registry.get_alias("hello", "live")


def test_a_reopened_registry_has_the_same_functions_versions_and_aliases(tmp_path: Path) -> None:
    registry = FunctionRegistry(tmp_path)
    make(registry, publish=True, environment={"KEY": "v"})
    registry.update_function_code("hello", V2, publish=True)
    registry.create_alias(
        "hello", "live", "1", routing_config={"AdditionalVersionWeights": {"2": 0.5}}
    )
    make(registry, name="other")
    before = (
        registry.list_functions(),
        registry.list_versions_by_function("hello"),
        registry.list_aliases("hello"),
    )
    reopened = FunctionRegistry(tmp_path)
    after = (
        reopened.list_functions(),
        reopened.list_versions_by_function("hello"),
        reopened.list_aliases("hello"),
    )
    assert after == before
    assert (reopened.version("hello", "2").code_dir / "app.py").read_text().endswith("'two'\n")
    assert reopened.publish_version("hello")["Version"] == "2"  # still idempotent after reopening


def test_crash_leftovers_are_swept_on_open(tmp_path: Path) -> None:
    registry = FunctionRegistry(tmp_path)
    make(registry)
    half_written = tmp_path / "functions" / ".partial-abc"
    (half_written / "latest").mkdir(parents=True)
    half_version = tmp_path / "functions" / "hello" / "versions" / ".partial-def"
    half_version.mkdir(parents=True)
    reopened = FunctionRegistry(tmp_path)
    assert not half_written.exists() and not half_version.exists()
    assert [f["FunctionName"] for f in reopened.list_functions()] == ["hello"]
    assert [v["Version"] for v in reopened.list_versions_by_function("hello")] == ["$LATEST"]


def test_a_hostile_zip_is_refused_and_leaves_nothing(registry: FunctionRegistry) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.py", "print('escaped')")
    with pytest.raises(ArchiveError):
        registry.create_function("hello", handler="evil.handler", code=buffer.getvalue())
    assert registry.list_functions() == []
    assert list((registry.root / "functions").iterdir()) == []
    assert not (registry.root / "evil.py").exists()
    make(registry)
    with pytest.raises(ArchiveError):
        registry.update_function_code("hello", b"not a zip at all")
    assert registry.get_function_configuration("hello")["CodeSha256"] == make_sha(V1)


def make_sha(code: bytes) -> str:
    return base64.b64encode(hashlib.sha256(code).digest()).decode()


def test_delete_function_removes_everything_and_tells_listeners(
    registry: FunctionRegistry,
) -> None:
    heard: list[RegistryEvent] = []
    registry.add_listener(heard.append)
    make(registry, publish=True)
    registry.update_function_code("hello", V2)
    registry.delete_function("hello")
    assert heard == [RegistryEvent("latest-changed", "hello"), RegistryEvent("deleted", "hello")]
    assert not (registry.root / "functions" / "hello").exists()
    with pytest.raises(ResourceNotFoundException, match="function:hello"):
        registry.get_function("hello")
    with pytest.raises(ResourceNotFoundException):
        registry.delete_function("hello")
