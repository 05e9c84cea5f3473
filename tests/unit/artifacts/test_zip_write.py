"""Deterministic zips: the same tree always gives the same bytes, modes and symlinks handled."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caravan.artifacts.zipfiles import (
    compile_glob,
    extract_zip,
    select_files,
    write_zip,
    zip_bytes,
    zip_files,
)
from caravan.errors import ArchiveError, InvalidInputError

Tree = Mapping[str, tuple[bytes, bool]]  # path -> (content, executable)

SAMPLE: Tree = {
    "README.md": (b"# hello\n", False),
    "bin/deploy.sh": (b"#!/bin/sh\necho deploy\n", True),
    "src/app/handler.py": (b"def handler(event, context):\n    return 1\n", False),
    "src/app/__init__.py": (b"", False),
    "dist/index.js": (b"console.log(1)\n" * 100, False),
    "dist/css/site.css": (b"body{}\n", False),
}


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def build(root: Path, tree: Tree, *, reverse: bool = False, mtime: float = 1_700_000_000) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for path in sorted(tree, reverse=reverse):
        content, executable = tree[path]
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        mode = target.stat().st_mode
        target.chmod(mode | 0o111 if executable else mode & ~0o111)
        os.utime(target, (mtime, mtime))
    return root


def test_same_tree_gives_identical_bytes_whatever_order_mtime_and_umask(tmp_path: Path) -> None:
    with umask(0o022):
        first = build(tmp_path / "one", SAMPLE, mtime=1_000_000_000)
    with umask(0o077):
        second = build(tmp_path / "elsewhere" / "two", SAMPLE, reverse=True, mtime=1_800_000_000)
    (second / "empty-dir").mkdir()
    (first / "empty-dir").mkdir()

    sha_one = write_zip(first, tmp_path / "one.zip")
    sha_two = write_zip(second, tmp_path / "two.zip")

    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    assert sha_one == sha_two == hashlib.sha256((tmp_path / "one.zip").read_bytes()).hexdigest()
    assert zip_bytes(second) == (tmp_path / "one.zip").read_bytes()


def test_entries_are_sorted_with_fixed_time_modes_and_no_extra_fields(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    (root / "zz-empty").mkdir()
    write_zip(root, tmp_path / "out.zip")

    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted([*SAMPLE, "zz-empty/"])
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.extra == b""
        assert info.create_system == 3
    modes = {i.filename: i.external_attr >> 16 for i in infos}
    assert modes["bin/deploy.sh"] == stat.S_IFREG | 0o755
    assert modes["README.md"] == stat.S_IFREG | 0o644
    assert stat.S_ISDIR(modes["zz-empty/"])
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos if not i.is_dir())


def test_only_empty_directories_get_an_entry(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", {"full/file.txt": (b"x", False)})
    (root / "empty" / "nested-empty").mkdir(parents=True)
    assert select_files(root) == ["empty/nested-empty/", "full/file.txt"]


def test_exec_bit_survives_a_round_trip(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    write_zip(root, tmp_path / "out.zip")
    extract_zip(tmp_path / "out.zip", tmp_path / "back")

    assert os.access(tmp_path / "back" / "bin/deploy.sh", os.X_OK)
    assert not os.access(tmp_path / "back" / "README.md", os.X_OK)
    for path, (content, _) in SAMPLE.items():
        assert (tmp_path / "back" / path).read_bytes() == content


def test_symlink_inside_the_tree_is_stored_as_its_target_content(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    (root / "latest.sh").symlink_to("bin/deploy.sh")
    (root / "assets").symlink_to("dist/css", target_is_directory=True)

    write_zip(root, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.read("latest.sh") == SAMPLE["bin/deploy.sh"][0]
        assert archive.getinfo("latest.sh").external_attr >> 16 == stat.S_IFREG | 0o755
        assert archive.read("assets/site.css") == b"body{}\n"


def test_symlink_leaving_the_tree_is_refused_by_name(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "dist" / "leak.txt").symlink_to(tmp_path / "secret.txt")

    with pytest.raises(ArchiveError) as caught:
        write_zip(root, tmp_path / "out.zip")
    assert caught.value.entry == "dist/leak.txt"
    assert "outside" in caught.value.message
    assert not (tmp_path / "out.zip").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_symlink_loop_and_dangling_link_are_refused(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    (root / "src" / "again").symlink_to("..", target_is_directory=True)
    with pytest.raises(ArchiveError, match="loop") as caught:
        zip_bytes(root)
    assert caught.value.entry == "src/again"

    (root / "src" / "again").unlink()
    (root / "gone").symlink_to("missing.txt")
    with pytest.raises(ArchiveError, match="does not exist") as caught:
        zip_bytes(root)
    assert caught.value.entry == "gone"


def test_base_sets_the_zip_root_while_links_may_reach_anywhere_in_root(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    (root / "dist" / "readme.md").symlink_to("../README.md")

    assert select_files(root, base=Path("dist")) == ["css/site.css", "index.js", "readme.md"]
    assert select_files(root, base=Path("dist"), include=["*.md"]) == ["readme.md"]
    with pytest.raises(InvalidInputError, match="outside"):
        select_files(root, base=Path(".."))
    with pytest.raises(InvalidInputError, match="does not exist"):
        select_files(root, base=Path("nope"))


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["**/*"], sorted(SAMPLE)),
        (["**"], sorted(SAMPLE)),
        (["*.md"], ["README.md"]),
        (["dist/**"], ["dist/css/site.css", "dist/index.js"]),
        (["dist/**/*"], ["dist/css/site.css", "dist/index.js"]),
        (["dist/*"], ["dist/index.js"]),
        (["**/*.py"], ["src/app/__init__.py", "src/app/handler.py"]),
        (["src/app/handler.py"], ["src/app/handler.py"]),
        (["./src/app/handler.py"], ["src/app/handler.py"]),
        (["**/*.{js,css}"], ["dist/css/site.css", "dist/index.js"]),
        (["bin/deploy.s?"], ["bin/deploy.sh"]),
        (["src/app/[!_]*"], ["src/app/handler.py"]),
        (["nothing/**", "*.none"], []),
        (["*.md", "bin/*"], ["README.md", "bin/deploy.sh"]),
    ],
)
def test_include_globs_select_like_codebuild(
    tmp_path: Path, patterns: list[str], expected: list[str]
) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    assert select_files(root, include=patterns) == expected


def test_empty_selection_gives_a_valid_empty_zip(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    write_zip(root, tmp_path / "out.zip", include=["*.nothing"])
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.namelist() == []
    assert extract_zip(tmp_path / "out.zip", tmp_path / "back") == []


def test_glob_star_stays_in_one_segment_and_double_star_crosses() -> None:
    assert compile_glob("*.js").fullmatch("a.js")
    assert not compile_glob("*.js").fullmatch("lib/a.js")
    assert compile_glob("**/*.js").fullmatch("a.js")
    assert compile_glob("**/*.js").fullmatch("lib/deep/a.js")
    assert compile_glob("lib/**/a.js").fullmatch("lib/a.js")
    assert not compile_glob("lib/**/a.js").fullmatch("other/lib/a.js")


def test_destination_inside_the_tree_is_not_zipped_into_itself(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    first = write_zip(root, root / "out.zip")
    second = write_zip(root, root / "out.zip")
    assert first == second
    with zipfile.ZipFile(root / "out.zip") as archive:
        assert "out.zip" not in archive.namelist()


def test_zip_files_builds_the_same_archive_as_the_tree(tmp_path: Path) -> None:
    root = build(tmp_path / "tree", SAMPLE)
    (root / "empty").mkdir()
    in_memory = {p: (c, 0o755 if x else 0o644) for p, (c, x) in SAMPLE.items()}
    assert zip_files({**in_memory, "empty/": b""}) == zip_bytes(root)
    assert zip_files({"a.txt": b"plain"}) == zip_files({"a.txt": (b"plain", 0o600)})
    with pytest.raises(InvalidInputError):
        zip_files({"../x": b""})


def test_missing_root_is_a_precise_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a directory"):
        write_zip(tmp_path / "missing", tmp_path / "out.zip")


# Small random trees: file names from a tiny alphabet so that shared directories are common.
_segment = st.text(alphabet="abc.-_", min_size=1, max_size=3).filter(lambda s: s not in {".", ".."})
_paths = st.lists(_segment, min_size=1, max_size=3).map("/".join)
_trees = st.dictionaries(_paths, st.tuples(st.binary(max_size=64), st.booleans()), max_size=8)


def _consistent(tree: Tree) -> bool:
    """No path is both a file and a parent directory of another file."""
    parents = {"/".join(p.split("/")[:i]) for p in tree for i in range(1, p.count("/") + 1)}
    return not parents & set(tree)


@settings(max_examples=40, deadline=None)
@given(tree=_trees.filter(_consistent), mtime=st.integers(400_000_000, 2_000_000_000))
def test_property_any_tree_zips_deterministically_and_round_trips(tree: Tree, mtime: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        first = zip_bytes(build(base / "a", tree))
        second = zip_bytes(build(base / "deeper" / "b", tree, reverse=True, mtime=mtime))
        assert first == second

        extracted = extract_zip(first, base / "out")
        assert extracted == sorted(tree)
        for path, (content, executable) in tree.items():
            assert (base / "out" / path).read_bytes() == content
            assert os.access(base / "out" / path, os.X_OK) == executable
