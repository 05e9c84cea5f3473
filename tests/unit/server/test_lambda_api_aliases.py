"""The alias operations of the Lambda API on the wire: 201/204 codes, RoutingConfig, the
RevisionId compare-and-swap, filtering and paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lambda_api_helpers import Api, assert_lambda_error, b64, open_api, package

from caravan.server.lambda_api import PREFIX

ALIASES = f"{PREFIX}/hello/aliases"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(tmp_path) as opened:
        await opened.create(Publish=True)
        await opened.client.put(
            f"{PREFIX}/hello/code", json={"ZipFile": b64(package("two")), "Publish": True}
        )
        yield opened


async def test_create_alias_answers_201_with_the_alias_configuration(api: Api) -> None:
    response = await api.client.post(
        ALIASES,
        json={
            "Name": "live",
            "FunctionVersion": "1",
            "Description": "production",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}},
        },
    )
    assert response.status_code == 201
    alias = response.json()
    assert alias["AliasArn"] == "arn:aws:lambda:us-east-1:000000000000:function:hello:live"
    assert alias["FunctionVersion"] == "1" and alias["Description"] == "production"
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    assert alias["RevisionId"]
    again = await api.client.post(ALIASES, json={"Name": "live", "FunctionVersion": "1"})
    assert "Alias already exists" in assert_lambda_error(again, 409, "ResourceConflictException")


@pytest.mark.parametrize(
    ("body", "status", "error", "named"),
    [
        ({"FunctionVersion": "1"}, 400, "InvalidParameterValueException", "'Name'"),
        ({"Name": "123", "FunctionVersion": "1"}, 400, "InvalidParameterValueException", "'name'"),
        ({"Name": "x", "FunctionVersion": "9"}, 404, "ResourceNotFoundException", "hello:9"),
        (
            {
                "Name": "x",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 2}},
            },
            400,
            "InvalidParameterValueException",
            "between 0.0 and 1.0",
        ),
        (
            {
                "Name": "x",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": [1]},
            },
            400,
            "InvalidRequestContentException",
            "RoutingConfig.AdditionalVersionWeights must be an object",
        ),
        (
            {
                "Name": "x",
                "FunctionVersion": "$LATEST",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
            },
            400,
            "InvalidParameterValueException",
            "$LATEST",
        ),
    ],
)
async def test_create_alias_refuses_bad_aliases(
    api: Api, body: dict[str, object], status: int, error: str, named: str
) -> None:
    assert named in assert_lambda_error(await api.client.post(ALIASES, json=body), status, error)


async def test_update_alias_is_a_compare_and_swap_on_revision_id(api: Api) -> None:
    created = (await api.client.post(ALIASES, json={"Name": "live", "FunctionVersion": "1"})).json()
    shifted = await api.client.put(
        f"{ALIASES}/live",
        json={
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
            "RevisionId": created["RevisionId"],
        },
    )
    assert shifted.status_code == 200
    assert shifted.json()["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    stale = await api.client.put(
        f"{ALIASES}/live", json={"FunctionVersion": "2", "RevisionId": created["RevisionId"]}
    )
    assert "GetAlias" in assert_lambda_error(stale, 412, "PreconditionFailedException")
    kept = (await api.client.put(f"{ALIASES}/live", json={"Description": "d"})).json()
    assert kept["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}  # left out: kept
    done = await api.client.put(
        f"{ALIASES}/live", json={"FunctionVersion": "2", "RoutingConfig": {}}
    )
    assert done.json()["FunctionVersion"] == "2"
    assert done.json()["RoutingConfig"] == {"AdditionalVersionWeights": {}}
    got = (await api.client.get(f"{ALIASES}/live")).json()
    assert got == done.json()


async def test_list_aliases_filters_by_version_and_pages(api: Api) -> None:
    for name, version in (("a", "1"), ("b", "2"), ("c", "1")):
        await api.client.post(ALIASES, json={"Name": name, "FunctionVersion": version})
    first = (await api.client.get(ALIASES, params={"MaxItems": "2"})).json()
    assert [a["Name"] for a in first["Aliases"]] == ["a", "b"]
    rest = (await api.client.get(ALIASES, params={"Marker": first["NextMarker"]})).json()
    assert [a["Name"] for a in rest["Aliases"]] == ["c"] and "NextMarker" not in rest
    on_one = (await api.client.get(ALIASES, params={"FunctionVersion": "1"})).json()
    assert [a["Name"] for a in on_one["Aliases"]] == ["a", "c"]


async def test_delete_alias_answers_204_then_404(api: Api) -> None:
    await api.client.post(ALIASES, json={"Name": "live", "FunctionVersion": "1"})
    deleted = await api.client.delete(f"{ALIASES}/live")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await api.client.get(f"{ALIASES}/live")
    assert "Cannot find alias arn" in assert_lambda_error(gone, 404, "ResourceNotFoundException")
    again = await api.client.delete(f"{ALIASES}/live")
    assert_lambda_error(again, 404, "ResourceNotFoundException")
    unknown = await api.client.get(f"{PREFIX}/nobody/aliases")
    assert_lambda_error(unknown, 404, "ResourceNotFoundException")
