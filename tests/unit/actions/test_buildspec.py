"""Parsing buildspec 0.2: the model users' files produce, and precise errors for bad ones."""

from __future__ import annotations

import pytest

from caravan.actions.buildspec import OnFailure, parse_buildspec
from caravan.errors import InvalidInputError

FULL = """
version: 0.2
env:
  shell: bash
  variables:
    STAGE: prod
    VERSION: 1.10
    DEBUG: yes
  exported-variables:
    - IMAGE_TAG
phases:
  install:
    runtime-versions:
      python: 3.11
    commands:
      - pip install -r requirements.txt
  pre_build:
    on-failure: CONTINUE
    commands:
      - echo pre
  build:
    commands:
      - make
      - yes
    finally:
      - echo cleanup
  post_build:
    commands:
      - echo done
artifacts:
  files:
    - '**/*'
  base-directory: dist
  discard-paths: yes
  exclude-paths: ['*.map']
  name: ignored-name
  secondary-artifacts:
    Docs:
      files: [docs/index.html]
"""


def test_a_full_buildspec() -> None:
    spec = parse_buildspec(FULL)
    assert spec.version == "0.2"
    assert spec.shell == "bash"
    # Scalars keep their text: no float 1.1, no boolean True.
    assert dict(spec.variables) == {"STAGE": "prod", "VERSION": "1.10", "DEBUG": "yes"}
    assert spec.exported_variables == ("IMAGE_TAG",)
    assert list(spec.phases) == ["install", "pre_build", "build", "post_build"]
    assert spec.phases["build"].commands == ("make", "yes")
    assert spec.phases["build"].finally_ == ("echo cleanup",)
    assert spec.phases["build"].on_failure is OnFailure.ABORT
    assert spec.phases["pre_build"].on_failure is OnFailure.CONTINUE
    assert spec.artifacts is not None
    assert spec.artifacts.files == ("**/*",)
    assert spec.artifacts.base_directory == "dist"
    assert spec.artifacts.discard_paths is True
    assert spec.artifacts.exclude_paths == ("*.map",)
    assert spec.secondary_artifacts["Docs"].files == ("docs/index.html",)
    assert spec.secondary_artifacts["Docs"].discard_paths is False
    assert spec.warnings == ("phases.install.runtime-versions is ignored by caravan",)


def test_phases_keep_codebuild_order_whatever_the_file_order() -> None:
    spec = parse_buildspec(
        "version: 0.2\nphases:\n  post_build: {commands: [b]}\n  install: {commands: [a]}\n"
    )
    assert list(spec.phases) == ["install", "post_build"]


def test_an_unknown_phase_is_an_error_with_its_path() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_buildspec("version: 0.2\nphases:\n  bild:\n    commands: [make]\n")
    assert str(caught.value).startswith("buildspec phases.bild: unknown phase")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 0.2\nphases: {}\nartifact: {files: [a]}\n", "buildspec artifact: unknown key"),
        (
            "version: 0.2\nphases:\n  build:\n    comands: [make]\n",
            "buildspec phases.build.comands: unknown key",
        ),
        (
            "version: 0.2\nphases: {}\nartifacts:\n  files: [a]\n  discard: yes\n",
            "buildspec artifacts.discard: unknown key",
        ),
        ("version: 0.2\nenv:\n  vars: {A: b}\nphases: {}\n", "buildspec env.vars: unknown key"),
    ],
)
def test_unknown_keys_are_errors_with_their_path(text: str, expected: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_buildspec(text)
    assert str(caught.value) == expected


def test_every_problem_is_reported_at_once_naming_the_source() -> None:
    text = """
version: 0.2
phases:
  build:
    on-failure: RETRY
    commands:
      - echo key: value
artifacts:
  discard-paths: maybe
"""
    with pytest.raises(InvalidInputError) as caught:
        parse_buildspec(text, source="buildspec ci/buildspec.yml")
    message = str(caught.value)
    assert message.startswith("buildspec ci/buildspec.yml has 4 problems:")
    assert "phases.build.commands[0]: must be a string (quote it if it contains ': ')" in message
    assert "phases.build.on-failure: must be ABORT or CONTINUE" in message
    assert "artifacts.files: is required" in message
    assert "artifacts.discard-paths: must be yes or no" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 0.1\nphases: {}\n", "version: only version 0.2 is supported"),
        ("phases: {}\n", "version: is required (use 0.2)"),
        ("version: 0.2\n", "phases: is required"),
        ("version: 0.2\nbatch: {}\nphases: {}\n", "batch: batch builds are not supported"),
        (
            "version: 0.2\nenv:\n  parameter-store: {A: /x}\nphases: {}\n",
            "env.parameter-store: Parameter Store variables are not supported",
        ),
        ("version: 0.2\nenv: {shell: zsh}\nphases: {}\n", "env.shell: must be one of sh, bash"),
        (
            "version: 0.2\nenv: {exported-variables: [a-b]}\nphases: {}\n",
            "env.exported-variables[0]: 'a-b' is not a variable name",
        ),
        (
            "version: 0.2\nenv: {variables: {CODEBUILD_X: y}}\nphases: {}\n",
            "env.variables.CODEBUILD_X: the CODEBUILD_ prefix is reserved",
        ),
        ("- a\n- b\n", "must be a mapping with version and phases"),
        ("", "is empty"),
    ],
)
def test_rule_violations(text: str, expected: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_buildspec(text)
    assert expected in str(caught.value)


def test_invalid_yaml_names_line_and_column() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_buildspec("version: 0.2\nphases:\n  build:\n    commands: [make\n")
    message = str(caught.value)
    assert message.startswith("buildspec: invalid YAML at line 5, column 1")


def test_ignored_codebuild_keys_become_warnings() -> None:
    spec = parse_buildspec("version: 0.2\ncache:\n  paths: [x]\nreports: {}\nphases: {}\n")
    assert spec.warnings == ("cache is ignored by caravan", "reports is ignored by caravan")
