"""Naming git repositories: URL credential redaction, URL detection and the repository map.

``redact`` hides the ``user:password@`` part of every URL in a message and ``strip_credentials``
drops it from a URL; ``is_url`` tells a URL from a local path; ``repository_name`` is the last
component of either. ``parse_repository_map`` parses ``CARAVAN_GIT_REPOSITORIES``.
"""

from __future__ import annotations

import re

from caravan.errors import InvalidInputError

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


def redact(text: str) -> str:
    """Hide the ``user:password@`` part of every URL in ``text``."""
    return _USERINFO.sub("***@", text)


def strip_credentials(url: str) -> str:
    """The URL without its userinfo: what names a repository, whoever fetches it."""
    return _USERINFO.sub("", url)


def is_url(location: str) -> bool:
    """Whether git reads ``location`` as a URL (``scheme://`` or scp-like ``user@host:path``)."""
    return "://" in location or bool(_SCP_LIKE.match(location))


def parse_repository_map(text: str) -> dict[str, str]:
    """Parse ``"owner/repo=/path;other/repo=https://..."`` (``CARAVAN_GIT_REPOSITORIES``).

    Entries are separated by ``;`` or newlines; empty entries are ignored. Each is
    ``name=location``, split at the first ``=``. Raises InvalidInputError naming the bad entry.
    """
    result: dict[str, str] = {}
    entries = [e.strip() for e in re.split(r"[;\n]", text)]
    for index, entry in enumerate(e for e in entries if e):
        where = f"CARAVAN_GIT_REPOSITORIES entry {index + 1} ({redact(entry)!r})"
        name, sep, location = (part.strip() for part in entry.partition("="))
        if not sep:
            raise InvalidInputError(f"{where}: expected name=path-or-url")
        if not name or not location:
            missing = "repository name" if not name else "path or URL"
            raise InvalidInputError(f"{where}: the {missing} is empty")
        if any(c.isspace() for c in name):
            raise InvalidInputError(f"{where}: the repository name contains whitespace")
        if name in result:
            raise InvalidInputError(f"{where}: repository {name!r} is listed twice")
        result[name] = location
    return result


def repository_name(location: str) -> str:
    """The last path component of a path or URL, without ``.git``."""
    tail = re.split(r"[/\\:]", location.rstrip("/\\"))[-1]
    return tail.removesuffix(".git") or tail
