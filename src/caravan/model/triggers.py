"""V2 git triggers as pure rules: glob patterns, git events, and which events start a pipeline.

``glob_to_regex`` compiles CodePipeline's glob syntax (syntax-glob.html; Java's PathMatcher
globs): ``*`` stays within a path component, ``**`` crosses directories, ``?`` is one
character, ``[...]`` a set (``[!...]`` its complement), ``{a,b}`` an alternation (no nesting)
and ``\\`` escapes. A pattern matches the whole path. caravan adds one convenience: ``**/``
also matches no directory at all, so ``**/*.md`` matches ``README.md`` as well as
``docs/a.md``.

``trigger_matches(git_configuration, event)`` applies AWS's boolean semantics: OR between the
``push`` (or ``pullRequest``) entries; AND between ``branches``, ``tags`` and ``filePaths``
inside one entry; OR within a list of includes (or excludes); an exclude wins over an include.
caravan goes beyond AWS in two places: every changed file is considered (AWS looks at the first
100), and a newly created branch does trigger (AWS skips it when file paths are filtered).
``default_matches`` is the rule without a trigger: a push to the source action's branch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from caravan.errors import InvalidInputError, Issue
from caravan.model.declaration import GitConfiguration, GitFilter, PipelineTrigger

EventKind = Literal["push", "pull_request"]
PullRequestAction = Literal["OPEN", "UPDATED", "CLOSED"]
NULL_COMMIT = "0" * 40


@dataclass(frozen=True)
class GitEvent:
    """One change to a repository, as a trigger sees it.

    ``changed_files`` None means unknown (file filters then match); ``default_branch`` is the
    repository's default branch when the event's sender knows it (GitHub does).
    """

    kind: EventKind
    branch: str | None  # the pushed branch; for a pull request, its destination branch
    tag: str | None  # the pushed tag (push events only)
    changed_files: tuple[str, ...] | None
    pr_action: PullRequestAction | None
    commit: str  # the commit to run: the pushed head, or the pull request's head
    created_branch: bool = False
    default_branch: str | None = None

    @property
    def ref(self) -> str:
        """The short name of what changed: the branch or the tag."""
        return self.tag or self.branch or "?"


# Glob patterns -------------------------------------------------------------------------------


class _GlobCompiler:
    """One pass over a glob pattern, emitting a Python regular expression."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0
        self.out: list[str] = []
        self.group_start: int | None = None  # position of the open '{', if inside one

    def error(self, rule: str) -> InvalidInputError:
        return InvalidInputError(f"glob pattern {self.pattern!r}: {rule}")

    def peek(self, offset: int = 0) -> str | None:
        index = self.pos + offset
        return self.pattern[index] if index < len(self.pattern) else None

    def compile(self) -> str:
        while self.pos < len(self.pattern):
            char = self.pattern[self.pos]
            self.pos += 1
            self.emit(char)
        if self.group_start is not None:
            raise self.error(f"'{{' at position {self.group_start} is never closed")
        return "".join(self.out)

    def emit(self, char: str) -> None:
        if char == "\\":
            escaped = self.peek()
            if escaped is None:
                raise self.error("ends with '\\', which escapes nothing")
            self.pos += 1
            self.out.append(re.escape(escaped))
        elif char == "*":
            self.star()
        elif char == "?":
            self.out.append("[^/]")
        elif char == "[":
            self.out.append(self.char_set())
        elif char == "{":
            if self.group_start is not None:
                raise self.error(f"'{{' at position {self.pos - 1}: groups cannot be nested")
            self.group_start = self.pos - 1
            self.out.append("(?:")
        elif char == "}" and self.group_start is not None:
            self.group_start = None
            self.out.append(")")
        elif char == "," and self.group_start is not None:
            self.out.append("|")
        else:
            self.out.append(re.escape(char))

    def star(self) -> None:
        if self.peek() != "*":
            self.out.append("[^/]*")
            return
        while self.peek() == "*":
            self.pos += 1
        # After a separator, at the start, or at the start of an alternative.
        starts_component = not self.out or self.out[-1] in ("/", "(?:", "|")
        if starts_component and self.peek() == "/":
            self.pos += 1
            self.out.append("(?:.*/)?")  # "**/": any directories, none included
        else:
            self.out.append(".*")

    def char_set(self) -> str:
        opened = self.pos - 1
        negate = self.peek() == "!"
        if negate:
            self.pos += 1
        members: list[str] = []
        if self.peek() == "-":  # a leading '-' is itself
            members.append(re.escape("-"))
            self.pos += 1
        previous: str | None = None
        while (char := self.peek()) is not None and char != "]":
            self.pos += 1
            if char == "/":
                raise self.error(f"'[' at position {opened}: a set cannot hold '/'")
            if char == "-" and previous is not None and self.peek() not in (None, "]"):
                upper = self.pattern[self.pos]
                self.pos += 1
                if upper < previous:
                    raise self.error(f"range {previous}-{upper} is reversed")
                members.append("-" + re.escape(upper))
                previous = None
                continue
            members.append(re.escape(char))  # '*', '?' and '\' are themselves in a set
            previous = char
        if self.peek() is None:
            raise self.error(f"'[' at position {opened} is never closed")
        self.pos += 1
        if not members:
            raise self.error(f"'[' at position {opened} opens an empty set")
        return f"(?!/)[{'^' if negate else ''}{''.join(members)}]"


@lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression of a glob ``pattern``, matching whole paths.

    Raises InvalidInputError naming the pattern and what is wrong with it.
    """
    return re.compile(_GlobCompiler(pattern).compile(), re.DOTALL)


def glob_matches(pattern: str, path: str) -> bool:
    return glob_to_regex(pattern).fullmatch(path) is not None


# Filter evaluation ---------------------------------------------------------------------------


def _any_glob(patterns: Iterable[str] | None, value: str) -> bool:
    return any(glob_matches(pattern, value) for pattern in patterns or ())


def value_passes(criteria: GitFilter | None, value: str | None) -> bool:
    """A branch or tag against ``criteria``: included (or no includes) and not excluded."""
    if criteria is None:
        return True
    if value is None:
        return False
    if criteria.includes and not _any_glob(criteria.includes, value):
        return False
    return not _any_glob(criteria.excludes, value)


def files_pass(criteria: GitFilter | None, changed: Sequence[str] | None) -> bool:
    """Whether any changed file is included and not excluded; unknown changes pass."""
    if criteria is None or changed is None:
        return True
    return any(value_passes(criteria, path) for path in changed)


def trigger_matches(git_configuration: GitConfiguration, event: GitEvent) -> bool:
    """Whether ``event`` starts the pipeline under this trigger (AWS's semantics, see above)."""
    if event.kind == "push":
        return any(
            _push_entry_matches(entry.tags, entry.branches, entry.file_paths, event)
            for entry in git_configuration.push or ()
        )
    return any(
        (not entry.events or event.pr_action in entry.events)
        and value_passes(entry.branches, event.branch)
        and files_pass(entry.file_paths, event.changed_files)
        for entry in git_configuration.pull_request or ()
    )


def _push_entry_matches(
    tags: GitFilter | None, branches: GitFilter | None, files: GitFilter | None, event: GitEvent
) -> bool:
    if tags is not None:  # a tag filter only ever matches tag pushes
        if event.tag is None or not value_passes(tags, event.tag):
            return False
    elif event.tag is not None:
        return False
    if branches is not None and not value_passes(branches, event.branch):
        return False
    return files_pass(files, event.changed_files)


def default_matches(source_branch: str | None, event: GitEvent) -> bool:
    """AWS's change detection without a trigger: a push to the source action's branch."""
    return (
        event.kind == "push"
        and event.tag is None
        and source_branch is not None
        and event.branch == source_branch
    )


# Declaration checks --------------------------------------------------------------------------


def trigger_issues(triggers: Sequence[PipelineTrigger] | None) -> list[Issue]:
    """Every glob pattern of ``triggers`` that does not compile, at its field path."""
    return [
        Issue(path, error.message.removeprefix("glob pattern "))
        for path, pattern in _patterns(triggers or ())
        if (error := _compile_error(pattern)) is not None
    ]


def _compile_error(pattern: str) -> InvalidInputError | None:
    try:
        glob_to_regex(pattern)
    except InvalidInputError as error:
        return error
    return None


def _patterns(triggers: Sequence[PipelineTrigger]) -> Iterator[tuple[str, str]]:
    for t, trigger in enumerate(triggers):
        git = trigger.git_configuration
        base = f"triggers[{t}].gitConfiguration"
        for f, push in enumerate(git.push or ()):
            criteria = {"tags": push.tags, "branches": push.branches, "filePaths": push.file_paths}
            yield from _criteria_patterns(f"{base}.push[{f}]", criteria)
        for f, pull in enumerate(git.pull_request or ()):
            criteria = {"branches": pull.branches, "filePaths": pull.file_paths}
            yield from _criteria_patterns(f"{base}.pullRequest[{f}]", criteria)


def _criteria_patterns(
    base: str, criteria: dict[str, GitFilter | None]
) -> Iterator[tuple[str, str]]:
    for key, criterion in criteria.items():
        if criterion is None:
            continue
        for part, patterns in (("includes", criterion.includes), ("excludes", criterion.excludes)):
            for p, pattern in enumerate(patterns or ()):
                yield f"{base}.{key}.{part}[{p}]", pattern
