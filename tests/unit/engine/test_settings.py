"""Engine settings come from the caller, then CARAVAN_* variables, then the defaults."""

from __future__ import annotations

import pytest

from caravan.engine.settings import EngineSettings
from caravan.errors import InvalidInputError


def test_environment_variables_set_every_setting_by_its_name() -> None:
    settings = EngineSettings.resolve(
        {},
        {
            "CARAVAN_QUEUE_LIMIT": "7",
            "CARAVAN_CONTINUATION_DELAY": "0.25",
            "CARAVAN_GIT_REPOSITORIES": "acme/app=/srv/app;acme/web=https://git.example/web.git",
            "CARAVAN_AWS_ENDPOINT_URL": "http://127.0.0.1:7878",
        },
    )
    assert settings.queue_limit == 7 and settings.continuation_delay == 0.25
    assert settings.git_repositories == {
        "acme/app": "/srv/app",
        "acme/web": "https://git.example/web.git",
    }
    assert settings.aws_endpoint_url == "http://127.0.0.1:7878"


def test_values_given_by_the_caller_win_over_the_environment() -> None:
    settings = EngineSettings.resolve({"queue_limit": 3}, {"CARAVAN_QUEUE_LIMIT": "7"})
    assert settings.queue_limit == 3


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(InvalidInputError, match="CARAVAN_QUEUE_LIMIT='lots': not a number"):
        EngineSettings.resolve({}, {"CARAVAN_QUEUE_LIMIT": "lots"})


def test_an_unknown_setting_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="queue_limit"):
        EngineSettings.from_mapping({"queue_limt": 3})
