"""The git mirror: fetch, resolve, export, metadata, recovery, cancellation, redaction."""

from __future__ import annotations

import asyncio
import base64
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from git_helpers import HERMETIC, GitRepo, git_in, http_git_server, simple_repo

from caravan.actions.git_command import GitCommandError, run_git
from caravan.actions.git_repo import (
    MAX_COMMIT_MESSAGE,
    BranchNotFoundError,
    RevisionNotFoundError,
    open_mirror,
)
from caravan.actions.git_urls import is_url, parse_repository_map, redact, repository_name
from caravan.errors import ArchiveError, InvalidInputError


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in HERMETIC.items():
        monkeypatch.setenv(name, value)


# --- parse_repository_map -------------------------------------------------------------------


def test_repository_map_parses_entries_separated_by_semicolons_and_newlines() -> None:
    text = " owner/repo = /srv/repo ;other/repo=https://h.example/x.git?a=b;\n cc-repo=/r ;"
    assert parse_repository_map(text) == {
        "owner/repo": "/srv/repo",
        "other/repo": "https://h.example/x.git?a=b",
        "cc-repo": "/r",
    }
    assert parse_repository_map("") == {}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a/b=/x;just-a-name", "entry 2 ('just-a-name'): expected name=path-or-url"),
        ("=/x", "entry 1 ('=/x'): the repository name is empty"),
        ("a/b=", "entry 1 ('a/b='): the path or URL is empty"),
        ("a/b=/x;a/b=/y", "entry 2 ('a/b=/y'): repository 'a/b' is listed twice"),
        ("a b=/x", "entry 1 ('a b=/x'): the repository name contains whitespace"),
    ],
)
def test_repository_map_errors_name_the_bad_entry(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_repository_map(text)
    assert "CARAVAN_GIT_REPOSITORIES" in str(caught.value)
    assert fragment in str(caught.value)


def test_repository_map_errors_do_not_echo_passwords() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_repository_map("https://ann:s3cret@h.example/x.git")
    assert "s3cret" not in str(caught.value)
    assert "https://***@h.example/x.git" in str(caught.value)


# --- names and URLs ---------------------------------------------------------------------------


def test_redact_hides_userinfo_of_every_url() -> None:
    text = "from https://ann:tok@h.example/a.git and ssh://git@h2/b, not /local/path"
    assert redact(text) == "from https://***@h.example/a.git and ssh://***@h2/b, not /local/path"


@pytest.mark.parametrize(
    ("location", "url"),
    [
        ("https://h/x.git", True),
        ("file:///srv/x", True),
        ("git@github.com:o/r.git", True),
        ("/srv/x", False),
        ("repos/x", False),
        ("./a:b", False),
    ],
)
def test_is_url(location: str, url: bool) -> None:
    assert is_url(location) is url


@pytest.mark.parametrize(
    ("location", "name"),
    [("/srv/dromedary.git", "dromedary"), ("https://h/o/app/", "app"), ("git@h:o/r.git", "r")],
)
def test_repository_name_is_the_last_component_without_dot_git(location: str, name: str) -> None:
    assert repository_name(location) == name


# --- the mirror -----------------------------------------------------------------------------


async def test_fetch_resolves_branches_and_reads_commit_metadata(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    repo.git("branch", "feature")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        assert await mirror.branches() == ["feature", "main"]
        assert await mirror.default_branch() == "main"
        assert await mirror.resolve_branch("main") == head
        info = await mirror.commit_info(head)
    assert info.sha == head
    assert info.author_date == info.committer_date == "2026-11-26T17:41:11Z"
    assert info.message == "Add the app\n\nWith a body line."
    assert info.summary == "Add the app"


async def test_missing_branch_lists_existing_branches(tmp_path: Path) -> None:
    repo, _ = simple_repo(tmp_path / "repo")
    repo.git("branch", "develop")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        with pytest.raises(BranchNotFoundError) as caught:
            await mirror.resolve_branch("release")
        for not_a_branch in ("main~1", "main^{tree}", "heads/main", "-x"):
            with pytest.raises(BranchNotFoundError):
                await mirror.resolve_branch(not_a_branch)
    assert caught.value.existing == ["develop", "main"]
    assert "branch 'release' does not exist" in str(caught.value)
    assert "existing branches: develop, main" in str(caught.value)


async def test_revisions_resolve_from_abbreviated_ids_and_must_be_reachable(
    tmp_path: Path,
) -> None:
    repo, first = simple_repo(tmp_path / "repo")
    repo.git("checkout", "-q", "-b", "doomed")
    doomed = repo.commit("on a branch that will be deleted")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        assert await mirror.resolve_revision(first[:8]) == first
        assert await mirror.resolve_revision(doomed.upper()) == doomed
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-D", "doomed")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()  # prunes the branch; its commit stays in the mirror's objects
        with pytest.raises(RevisionNotFoundError, match="not reachable from any branch or tag"):
            await mirror.resolve_revision(doomed)
        with pytest.raises(RevisionNotFoundError, match="does not exist"):
            await mirror.resolve_revision("deadbeef" * 5)
        with pytest.raises(RevisionNotFoundError, match="is not a commit id"):
            await mirror.resolve_revision("main~1")


async def test_commit_message_is_trimmed_to_100_kb(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    head = repo.commit("é" * (MAX_COMMIT_MESSAGE))  # 2 bytes each: twice the limit
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        info = await mirror.commit_info(head)
    assert len(info.message.encode()) == MAX_COMMIT_MESSAGE
    assert set(info.message) == {"é"}


async def test_export_keeps_modes_symlinks_and_nesting_without_dot_git(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        stats = await mirror.export_tree(head, tmp_path / "out")
    out = tmp_path / "out"
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert found == ["README.md", "bin", "bin/run.sh", "docs", "src", "src/app", "src/app/main.py"]
    assert stat.S_IMODE((out / "bin/run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "README.md").stat().st_mode) == 0o644
    assert (out / "docs").readlink() == Path("src/app")
    assert (stats.files, stats.bytes) == (3, len("# demo\n#!/bin/sh\necho hi\nprint('hi')\n"))
    assert not (tmp_path / "out.tar").exists()


async def test_export_skips_submodules_and_reports_them(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{head},vendor/lib")
    head = repo.commit("Add a submodule", add=False)
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        stats = await mirror.export_tree(head, tmp_path / "out")
    assert stats.skipped_submodules == ("vendor/lib",)
    assert not (tmp_path / "out/vendor/lib").exists()


async def test_clone_at_keeps_dot_git_on_the_branch(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        stats = await mirror.clone_at(head, "main", tmp_path / "clone")
    clone = tmp_path / "clone"
    assert git_in(clone, "rev-parse", "HEAD") == head
    assert git_in(clone, "branch", "--show-current") == "main"
    assert git_in(clone, "remote", "get-url", "origin") == str(repo.path)
    assert git_in(clone, "status", "--porcelain") == ""
    assert stat.S_IMODE((clone / "bin/run.sh").stat().st_mode) & 0o100
    assert stats.files == 3


async def test_a_second_fetch_picks_up_new_commits_in_the_same_mirror(tmp_path: Path) -> None:
    repo, first = simple_repo(tmp_path / "repo")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        path = mirror.path
    second = repo.commit("Second", date="2026-11-27T09:00:00Z")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        assert mirror.path == path
        await mirror.fetch()
        assert await mirror.resolve_branch("main") == second
        assert await mirror.resolve_revision(first) == first
    assert len(list((tmp_path / "cache/git-mirrors").glob("*.git"))) == 1


async def test_lock_files_left_by_a_killed_fetch_do_not_break_the_next_one(
    tmp_path: Path,
) -> None:
    repo, _ = simple_repo(tmp_path / "repo")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        path = mirror.path
    # What git leaves behind when SIGKILLed in the middle of updating refs.
    (path / "refs/heads/main.lock").write_text("")
    (path / "packed-refs.lock").write_text("")
    head = repo.commit("After the crash")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        assert await mirror.resolve_branch("main") == head


async def test_a_mirror_that_is_not_a_repository_is_rebuilt(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        path = mirror.path
    shutil.rmtree(path)  # e.g. a disk cleaner emptied it
    path.mkdir()
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        assert await mirror.resolve_branch("main") == head


async def test_concurrent_users_of_one_mirror_take_turns(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "repo")

    async def use() -> str:
        async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
            await mirror.fetch()
            return await mirror.resolve_branch("main")

    assert await asyncio.gather(*(use() for _ in range(4))) == [head] * 4


async def test_cancelling_a_git_command_stops_it_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"!sleep 30 & echo $! > {pid_file}; wait"
    task = asyncio.create_task(run_git("-c", f"alias.slow={script}", "slow", cwd=tmp_path))
    assert await _eventually(lambda: pid_file.exists() and bool(pid_file.read_text().strip()))
    child = int(pid_file.read_text())
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _eventually(lambda: not _running(child))
    assert time.monotonic() - started < 3


async def _eventually(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for init to reap it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


async def test_fetch_failures_never_show_the_password_of_a_url(tmp_path: Path) -> None:
    with http_git_server(tmp_path, "Basic nope") as base:
        url = base.replace("http://", "http://ann:s3cret@") + "/repo.git"
        async with open_mirror(url, tmp_path / "cache") as mirror:
            with pytest.raises(GitCommandError) as caught:
                await mirror.fetch()
    message = str(caught.value)
    assert "s3cret" not in message
    assert "git fetch failed" in message


async def test_fetch_over_http_with_credentials_in_the_url(tmp_path: Path) -> None:
    repo, head = simple_repo(tmp_path / "srv/repo")
    bare = tmp_path / "srv/repo.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    await run_git("--git-dir", str(bare), "update-server-info")
    token = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    with http_git_server(tmp_path / "srv", token) as base:
        url = base.replace("http://", "http://ann:s3cret@") + "/repo.git"
        async with open_mirror(url, tmp_path / "cache") as mirror:
            await mirror.fetch()
            assert await mirror.resolve_branch("main") == head
            assert "s3cret" not in mirror.display_url
    config = next((tmp_path / "cache/git-mirrors").glob("*.git")) / "config"
    assert "s3cret" not in config.read_text()


async def test_a_hostile_tree_cannot_write_outside_the_export(tmp_path: Path) -> None:
    """A crafted tree holds "a" twice: a symlink leaving the tree, then a directory."""
    repo = GitRepo(tmp_path / "repo")
    outside = tmp_path / "outside"
    outside.mkdir()
    link = repo.git("hash-object", "-w", "--stdin", input=str(outside))
    blob = repo.git("hash-object", "-w", "--stdin", input="pwned\n")
    inner = _write_tree(repo, [("100644", "b", blob)])
    tree = _write_tree(repo, [("120000", "a", link), ("40000", "a", inner)])
    head = repo.git("commit-tree", tree, "-m", "hostile")
    repo.git("update-ref", "refs/heads/main", head)
    async with open_mirror(str(repo.path), tmp_path / "cache") as mirror:
        await mirror.fetch()
        with pytest.raises(ArchiveError, match=r"reached through a symlink.*'a/b'"):
            await mirror.export_tree(head, tmp_path / "out")
    assert list(outside.iterdir()) == []


def _write_tree(repo: GitRepo, entries: list[tuple[str, str, str]]) -> str:
    raw = b"".join(
        f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries
    )
    (repo.path / "tree.bin").write_bytes(raw)
    return repo.git("hash-object", "-w", "--literally", "-t", "tree", "tree.bin")
