"""What caravan's git hooks run: ``python -m caravan.hooks.notify --url URL --kind HOOK``.

It reads what the hook was given (``post-receive``: ``old new ref`` lines on stdin; the others:
the repository's HEAD and current branch), works out the files each change touched, and posts
``{repository, ref, before, after, changedFiles, createdBranch}`` to ``URL/api/hooks/git`` with a
2-second timeout, one post per ref. It always exits 0 and writes at most a few lines to stderr:
a commit or a push must never fail because caravan is down. ``CARAVAN_HOOKS=off`` silences it.

Only the standard library is imported: this runs on every commit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 2.0
NULL_COMMIT = "0" * 40
KINDS = ("post-commit", "post-merge", "post-rewrite", "post-receive")


class _GitFailed(Exception):
    pass


def git(*args: str) -> str:
    """``git args`` in the hook's repository (the hook's working directory and environment)."""
    done = subprocess.run(
        ["git", *args], capture_output=True, encoding="utf-8", errors="replace", check=False
    )
    if done.returncode != 0:
        raise _GitFailed(f"git {args[0]}: {done.stderr.strip()}")
    return done.stdout


def _split_z(text: str) -> list[str]:
    return [item for item in text.split("\0") if item]


def repository_path() -> str:
    """The repository as the server names it: a bare repository's directory, else its top."""
    if git("rev-parse", "--is-bare-repository").strip() == "true":
        return git("rev-parse", "--absolute-git-dir").strip()
    return git("rev-parse", "--show-toplevel").strip()


def _commit_or_none(revision: str) -> str | None:
    try:
        return git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip() or None
    except _GitFailed:
        return None


def all_files(commit: str) -> list[str]:
    return _split_z(git("ls-tree", "-r", "-z", "--name-only", "--full-tree", commit))


def diff_files(before: str, after: str) -> list[str]:
    return _split_z(git("diff", "--name-only", "-z", "--no-renames", before, after, "--"))


def new_branch_files(ref: str, commit: str) -> list[str]:
    """Files changed by the commits of a new branch that no other branch holds."""
    tips = [
        line.split(" ", 1)[0]
        for line in git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads").split(
            "\n"
        )
        if line and line.split(" ", 1)[1] != ref
    ]
    if not tips:  # the repository's first branch: everything is new
        return all_files(commit)
    listed = git("log", "--format=", "--name-only", "-z", "--no-renames", commit, "--not", *tips)
    return list(dict.fromkeys(_split_z(listed)))


def payload(ref: str, before: str | None, after: str, repository: str) -> dict[str, Any]:
    """What the server reads; ``before`` None (or the null commit) means a new branch."""
    if before == NULL_COMMIT:
        before = None
    files = new_branch_files(ref, after) if before is None else diff_files(before, after)
    return {
        "repository": repository,
        "ref": ref,
        "before": before,
        "after": after,
        "changedFiles": files,
        "createdBranch": before is None,
    }


def received(lines: Sequence[str], repository: str) -> Iterator[dict[str, Any]]:
    """post-receive: one payload per updated ref (deletions are skipped)."""
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or parts[1] == NULL_COMMIT:
            continue
        old, new, ref = parts
        yield payload(ref, old, new, repository)


def _in_progress_rebase() -> bool:
    for name in ("rebase-merge", "rebase-apply"):
        if Path(git("rev-parse", "--git-path", name).strip()).exists():
            return True
    return False


def committed(kind: str, extra: Sequence[str], repository: str) -> Iterator[dict[str, Any]]:
    """post-commit, post-merge, post-rewrite: the current branch moved to HEAD."""
    if kind == "post-rewrite" and extra[:1] != ["rebase"]:
        return  # `commit --amend` also runs post-commit, which reports it
    if kind == "post-commit" and _in_progress_rebase():
        return  # each picked commit of a rebase; post-rewrite reports the result once
    try:
        ref = git("symbolic-ref", "--quiet", "HEAD").strip()
    except _GitFailed:
        return  # a detached HEAD is on no branch: nothing a trigger could name
    after = git("rev-parse", "HEAD").strip()
    # A commit's parent (none for a first commit: a new branch); what a merge or rebase left.
    before = _commit_or_none("HEAD^" if kind == "post-commit" else "ORIG_HEAD")
    if before != after:
        yield payload(ref, before, after, repository)


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the URL the user installed the hook with
        url.rstrip("/") + "/api/hooks/git",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # No proxy: the server is on this machine, and a proxy could not pass as loopback anyway.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
        answer: dict[str, Any] = json.loads(response.read() or b"{}")
    return answer


def report(answer: dict[str, Any]) -> None:
    for started in answer.get("pipelineExecutions", []):
        say(
            f"started pipeline {started.get('pipelineName')} "
            f"(execution {started.get('pipelineExecutionId')})"
        )
    for failure in answer.get("failures", []):
        say(f"pipeline {failure.get('pipelineName')} did not start: {failure.get('message')}")


def say(line: str) -> None:
    print(f"caravan: {line}", file=sys.stderr)


def notify(url: str, kind: str, extra: Sequence[str], stdin_lines: Sequence[str]) -> None:
    repository = repository_path()
    if kind == "post-receive":
        bodies = list(received(stdin_lines, repository))
    else:
        bodies = list(committed(kind, extra, repository))
    for body in bodies:
        try:
            report(post(url, body))
        except urllib.error.HTTPError as error:
            say(f"{url} refused the change: {_error_message(error)}")
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                say(f"no answer from {url} within {TIMEOUT_SECONDS:g} s; pipelines may still start")
            else:
                say(f"server not reachable at {url}; no pipeline started")
            return
        except TimeoutError:
            say(f"no answer from {url} within {TIMEOUT_SECONDS:g} s; pipelines may still start")
            return


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("message", error))
    except (ValueError, AttributeError, OSError):
        return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caravan.hooks.notify")
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("extra", nargs="*", help="the arguments git gave the hook")
    args = parser.parse_args(argv)
    if os.environ.get("CARAVAN_HOOKS", "").lower() == "off":
        return 0
    lines = sys.stdin.read().splitlines() if args.kind in ("post-receive", "post-rewrite") else []
    try:
        notify(args.url, args.kind, args.extra, lines)
    except Exception as error:  # never fail the commit; say why nothing was started
        say(f"could not notify {args.url} ({error}); no pipeline started")
    return 0


if __name__ == "__main__":
    sys.exit(main())
