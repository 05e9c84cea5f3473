"""V2 trigger rules: CodePipeline's glob syntax, its boolean filter semantics, and where caravan
goes further (every changed file counts; a new branch triggers)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan.errors import InvalidInputError
from caravan.model.declaration import GitConfiguration, PipelineTrigger
from caravan.model.triggers import (
    GitEvent,
    default_matches,
    glob_matches,
    glob_to_regex,
    trigger_issues,
    trigger_matches,
)

# Globs ---------------------------------------------------------------------------------------

# The examples of https://docs.aws.amazon.com/codepipeline/latest/userguide/syntax-glob.html
AWS_EXAMPLES = [
    ("*.java", "Main.java", True),
    ("*.java", "Main.jav", False),
    ("*.*", "notes.txt", True),
    ("*.*", "Makefile", False),
    ("*.{java,class}", "Main.java", True),
    ("*.{java,class}", "Main.class", True),
    ("*.{java,class}", "Main.jar", False),
    ("foo.?", "foo.c", True),
    ("foo.?", "foo.cc", False),
    ("my-file.jar", "my-file.jar", True),
    ("my-file.jar", "lib/my-file.jar", False),
    ("directory/my-file.jar", "directory/my-file.jar", True),
    ("directory/subdirectory/my-file.jar", "directory/subdirectory/my-file.jar", True),
    ("**", "any/depth/at/all.txt", True),
    ("**", "top.txt", True),
    ("directory/**", "directory/a.txt", True),
    ("directory/**", "directory/sub/deeper/a.txt", True),
    ("directory/**", "other/a.txt", False),
    ("directory/*", "directory/a.txt", True),
    ("directory/*", "directory/sub/a.txt", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), AWS_EXAMPLES)
def test_aws_documented_glob_examples(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*", "a/b", False),  # '*' stays inside one component
        ("src/*.py", "src/app.py", True),
        ("src/*.py", "src/pkg/app.py", False),
        ("?", "/", False),  # '?' is one character of a name, never the separator
        ("a?c", "abc", True),
        ("**/*.md", "README.md", True),  # caravan: "**/" may also be no directory at all
        ("**/*.md", "docs/guide/intro.md", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("[abc].txt", "b.txt", True),
        ("[abc].txt", "d.txt", False),
        ("[!abc].txt", "d.txt", True),
        ("[!abc].txt", "a.txt", False),
        ("[!a]", "/", False),  # a complemented set still never matches the separator
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[-a]", "-", True),  # a leading '-' is itself
        ("[!-a]", "-", False),
        ("[*?\\]", "*", True),  # '*', '?' and '\' are themselves inside a set
        ("[*?\\]", "\\", True),
        ("[*?\\]", "x", False),
        ("\\*.txt", "*.txt", True),  # escape
        ("\\*.txt", "a.txt", False),
        ("\\{a,b\\}", "{a,b}", True),
        ("{src,lib}/**", "lib/x/y.c", True),
        ("{src,lib}/**", "test/x.c", False),
        ("{**/x,y}", "deep/er/x", True),
        ("a,b", "a,b", True),  # ',' outside a group is a plain character
        ("a}b", "a}b", True),
        ("v1.0+(rc).txt", "v1.0+(rc).txt", True),  # regex metacharacters are literal
        ("v1.0+(rc).txt", "v1x0+(rc).txt", False),
        ("release/*", "release/1.2", True),
        ("release/*", "release", False),
    ],
)
def test_glob_edge_cases(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        ("abc\\", "escapes nothing"),
        ("[abc", "never closed"),
        ("{a,b", "never closed"),
        ("{a,{b,c}}", "cannot be nested"),
        ("[a/b]", "cannot hold '/'"),
        ("[z-a]", "reversed"),
        ("[]", "empty set"),
        ("[!]x", "empty set"),
    ],
)
def test_malformed_globs_are_named_errors(pattern: str, complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=complaint) as caught:
        glob_to_regex(pattern)
    assert repr(pattern) in caught.value.message


_SPECIAL = set("*?[]{},\\")


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30))
def test_an_escaped_literal_matches_exactly_itself(text: str) -> None:
    pattern = "".join(f"\\{c}" if c in _SPECIAL else c for c in text)
    assert glob_matches(pattern, text)
    assert not glob_matches(pattern, text + "x")


# Events and configurations ---------------------------------------------------------------------


def push(
    branch: str | None = "main",
    files: tuple[str, ...] | None = ("src/app.py",),
    *,
    tag: str | None = None,
    created: bool = False,
) -> GitEvent:
    return GitEvent(
        kind="push",
        branch=None if tag else branch,
        tag=tag,
        changed_files=files,
        pr_action=None,
        commit="a" * 40,
        created_branch=created,
    )


def pull_request(
    action: Any = "OPEN", branch: str = "main", files: tuple[str, ...] | None = None
) -> GitEvent:
    return GitEvent(
        kind="pull_request",
        branch=branch,
        tag=None,
        changed_files=files,
        pr_action=action,
        commit="b" * 40,
    )


def config(**filters: Any) -> GitConfiguration:
    return GitConfiguration.model_validate({"sourceActionName": "Source", **filters})


def test_or_between_push_entries() -> None:
    git = config(
        push=[{"branches": {"includes": ["main"]}}, {"branches": {"includes": ["release/*"]}}]
    )
    assert trigger_matches(git, push("main"))
    assert trigger_matches(git, push("release/2.0"))
    assert not trigger_matches(git, push("feature/x"))


def test_and_between_branches_and_file_paths_in_one_entry() -> None:
    git = config(push=[{"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/**"]}}])
    assert trigger_matches(git, push("main", ("src/app.py",)))
    assert not trigger_matches(git, push("main", ("docs/readme.md",)))
    assert not trigger_matches(git, push("dev", ("src/app.py",)))


def test_includes_are_ored() -> None:
    git = config(push=[{"branches": {"includes": ["main", "prod"]}}])
    assert trigger_matches(git, push("main"))
    assert trigger_matches(git, push("prod"))
    assert not trigger_matches(git, push("dev"))


def test_excludes_win_over_includes_even_for_the_same_pattern() -> None:
    git = config(push=[{"branches": {"includes": ["main", "feature/*"], "excludes": ["main"]}}])
    assert not trigger_matches(git, push("main"))
    assert trigger_matches(git, push("feature/a"))


def test_excludes_alone_match_everything_else() -> None:
    git = config(push=[{"branches": {"excludes": ["wip/**"]}}])
    assert trigger_matches(git, push("main"))
    assert not trigger_matches(git, push("wip/try/this"))


def test_file_paths_need_one_file_that_is_included_and_not_excluded() -> None:
    git = config(push=[{"filePaths": {"includes": ["**"], "excludes": ["docs/**", "*.md"]}}])
    assert not trigger_matches(git, push(files=("docs/a.md", "README.md")))
    assert trigger_matches(git, push(files=("docs/a.md", "src/app.py")))
    assert not trigger_matches(git, push(files=()))  # an empty commit touches no file


def test_every_changed_file_counts_not_only_the_first_100() -> None:
    files = (*(f"docs/page{i}.md" for i in range(500)), "src/late.py")
    git = config(push=[{"filePaths": {"includes": ["src/**"]}}])
    assert trigger_matches(git, push(files=files))
    assert not trigger_matches(git, push(files=files[:-1]))


def test_a_tag_filter_matches_only_tag_pushes() -> None:
    git = config(push=[{"tags": {"includes": ["v*"], "excludes": ["v*-rc*"]}}])
    assert trigger_matches(git, push(tag="v1.2.0"))
    assert not trigger_matches(git, push(tag="v1.2.0-rc1"))
    assert not trigger_matches(git, push(tag="latest"))
    assert not trigger_matches(git, push("v1"))  # a branch named like a tag is not a tag


def test_a_branch_filter_never_matches_a_tag_push() -> None:
    git = config(push=[{"branches": {"includes": ["**"]}}])
    assert trigger_matches(git, push("anything"))
    assert not trigger_matches(git, push(tag="v1"))


def test_a_new_branch_triggers_and_unknown_files_pass_file_filters() -> None:
    git = config(
        push=[{"branches": {"includes": ["feature/*"]}, "filePaths": {"includes": ["src/**"]}}]
    )
    assert trigger_matches(git, push("feature/new", None, created=True))
    assert trigger_matches(git, push("feature/new", ("src/a.py",), created=True))
    assert not trigger_matches(git, push("feature/new", ("docs/a.md",), created=True))


def test_pull_request_filters_events_and_destination_branch() -> None:
    git = config(pullRequest=[{"events": ["OPEN", "UPDATED"], "branches": {"includes": ["main"]}}])
    assert trigger_matches(git, pull_request("OPEN", "main"))
    assert trigger_matches(git, pull_request("UPDATED", "main"))
    assert not trigger_matches(git, pull_request("CLOSED", "main"))
    assert not trigger_matches(git, pull_request("OPEN", "dev"))


def test_pull_request_without_events_takes_every_event_and_checks_files() -> None:
    git = config(pullRequest=[{"filePaths": {"includes": ["src/**"]}}])
    assert trigger_matches(git, pull_request("CLOSED"))  # files unknown: pass
    assert trigger_matches(git, pull_request("OPEN", files=("src/a.py",)))
    assert not trigger_matches(git, pull_request("OPEN", files=("docs/a.md",)))


def test_push_and_pull_request_filters_apply_to_their_own_events_only() -> None:
    only_push = config(push=[{"branches": {"includes": ["main"]}}])
    only_pr = config(pullRequest=[{"branches": {"includes": ["main"]}}])
    assert not trigger_matches(only_push, pull_request("OPEN", "main"))
    assert not trigger_matches(only_pr, push("main"))


def test_default_rule_is_a_push_to_the_source_branch() -> None:
    assert default_matches("main", push("main"))
    assert not default_matches("main", push("dev"))
    assert not default_matches("main", push(tag="main"))
    assert not default_matches("main", pull_request("OPEN", "main"))
    assert not default_matches(None, push("main"))


def test_trigger_issues_name_each_malformed_pattern_by_field_path() -> None:
    trigger = PipelineTrigger.model_validate(
        {
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {
                "sourceActionName": "Source",
                "push": [{"branches": {"includes": ["main", "feat/{a,{b}}"]}}],
                "pullRequest": [{"filePaths": {"excludes": ["[src"]}}],
            },
        }
    )
    issues = trigger_issues([trigger])
    assert [i.path for i in issues] == [
        "triggers[0].gitConfiguration.push[0].branches.includes[1]",
        "triggers[0].gitConfiguration.pullRequest[0].filePaths.excludes[0]",
    ]
    assert "nested" in issues[0].rule


def test_a_bad_trigger_glob_is_a_declaration_error_with_its_path() -> None:
    from caravan.errors import DeclarationError
    from caravan.model.loader import load_data

    source = {
        "name": "Src",
        "actionTypeId": {
            "category": "Source",
            "owner": "Custom",
            "provider": "Git",
            "version": "1",
        },
        "configuration": {"Repository": ".", "Branch": "main"},
        "outputArtifacts": [{"name": "S"}],
    }
    build = {
        "name": "B",
        "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "X", "version": "1"},
        "inputArtifacts": [{"name": "S"}],
    }
    document = {
        "pipeline": {
            "name": "p",
            "pipelineType": "V2",
            "stages": [
                {"name": "Source", "actions": [source]},
                {"name": "Build", "actions": [build]},
            ],
            "triggers": [
                {
                    "providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {
                        "sourceActionName": "Src",
                        "push": [{"branches": {"includes": ["{unclosed"]}}],
                    },
                }
            ],
        }
    }
    with pytest.raises(DeclarationError) as caught:
        load_data(document)
    assert [i.path for i in caught.value.issues] == [
        "triggers[0].gitConfiguration.push[0].branches.includes[0]"
    ]
