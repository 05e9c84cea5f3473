"""Selecting files for a zip: CodeBuild-style globs over relative POSIX paths.

Patterns are relative to the zip's base and matched against whole relative paths. ``*`` and
``?`` stay within one path segment, ``**`` crosses directories (``**/`` also matches no directory
at all), ``[abc]`` / ``[!abc]`` sets, ``{a,b}`` alternatives, ``\\`` escapes. ``*`` matches
dotfiles too. A pattern matching nothing is fine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression matching the relative POSIX paths selected by ``pattern``."""
    text = pattern.strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.strip("/")
    segments = [segment for segment in text.split("/") if segment]
    pieces: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            pieces.append(".*" if last else "(?:.*/)?")
        else:
            pieces.append(_translate_segment(segment) + ("" if last else "/"))
    return re.compile("".join(pieces), re.DOTALL)


def _translate_segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "\\" and i + 1 < len(segment):
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        if segment.startswith("**", i):  # "**" inside a segment crosses directories too
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := segment.find("]", i + 2)) != -1:
            body = segment[i + 1 : end]
            negate = body.startswith(("!", "^"))
            body = body[1:] if negate else body
            out.append(("[^/" if negate else "[") + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        elif char == "{" and (end := segment.find("}", i)) != -1:
            options = segment[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_translate_segment(o) for o in options) + ")")
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def matcher(include: Sequence[str] | None) -> Callable[[str], bool]:
    if include is None:
        return lambda _path: True
    if isinstance(include, str):  # a lone pattern would otherwise be split into characters
        include = [include]
    compiled = [compile_glob(p) for p in include]
    return lambda path: any(regex.fullmatch(path) for regex in compiled)
