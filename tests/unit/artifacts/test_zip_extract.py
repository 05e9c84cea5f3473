"""Safe extraction: hostile archives are refused by entry and rule, leaving nothing behind."""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caravan.artifacts.zipfiles import ExtractLimits, extract_zip, zip_files
from caravan.errors import ArchiveError, InvalidInputError

LINK = (stat.S_IFLNK | 0o777) << 16


def archive(*entries: tuple[str, bytes] | tuple[str, bytes, int], stored: bool = False) -> bytes:
    """A zip built by hand: (name, content[, external_attr])."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", compression=method) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates we forge on purpose
        for name, content, *attr in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            info.external_attr = attr[0] if attr else (stat.S_IFREG | 0o644) << 16
            handle.writestr(info, content)
    return buffer.getvalue()


def patch_headers(data: bytes, **fields: int) -> bytes:
    """Rewrite fields of the (single) entry's local and central headers, as a forger would."""
    local = {"flags": 6, "method": 8, "compress_size": 18, "file_size": 22}
    central = {"flags": 8, "method": 10, "compress_size": 20, "file_size": 24}
    raw = bytearray(data)
    central_at = raw.rfind(b"PK\x01\x02")
    for name, value in fields.items():
        fmt = "<H" if name in ("flags", "method") else "<I"
        struct.pack_into(fmt, raw, local[name], value)
        struct.pack_into(fmt, raw, central_at + central[name], value)
    return bytes(raw)


def assert_refused(
    tmp_path: Path, data: bytes, entry: str, rule: str, limits: ExtractLimits | None = None
) -> ArchiveError:
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ArchiveError) as caught:
        if limits is None:
            extract_zip(data, tmp_path / "out")
        else:
            extract_zip(data, tmp_path / "out", limits=limits)
    assert caught.value.entry == entry
    assert rule in caught.value.message
    assert set(tmp_path.rglob("*")) == before, "a refused archive must leave nothing behind"
    return caught.value


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("../evil.txt", "traversal"),
        ("a/../../evil.txt", "traversal"),
        ("..\\evil.txt", "traversal"),
        ("a\\..\\..\\evil.txt", "traversal"),
        ("/tmp/evil.txt", "absolute"),
        ("C:\\evil.txt", "absolute"),
        ("C:/evil.txt", "absolute"),
        ("\\\\server\\share\\evil.txt", "absolute"),
    ],
)
def test_paths_escaping_the_destination_are_refused(tmp_path: Path, name: str, rule: str) -> None:
    data = archive(("ok.txt", b"fine"), (name, b"evil"))
    assert_refused(tmp_path, data, name, rule)


def test_nul_byte_in_a_name_is_refused(tmp_path: Path) -> None:
    data = archive(("evilXtxt.png", b"x")).replace(b"evilXtxt", b"evil\x00txt")
    assert_refused(tmp_path, data, "evil\x00txt.png", "NUL")


@pytest.mark.parametrize(
    "target", ["../../evil.txt", "/etc/passwd", "x/../../../evil.txt", "..\\..\\x", "C:\\x"]
)
def test_symlink_entries_leaving_the_tree_are_refused(tmp_path: Path, target: str) -> None:
    data = archive(("a/file.txt", b"x"), ("a/link", target.encode(), LINK))
    assert_refused(tmp_path, data, "a/link", "outside")


def test_symlink_chain_that_escapes_only_when_resolved_is_refused(tmp_path: Path) -> None:
    # "a/b/c/d" -> "a" lexically; "a/b/c/x" -> "d/../../y" looks like "a/b/y", really escapes.
    data = archive(
        ("a/b/c/d", b"../../..", LINK),
        ("a/b/c/x", b"d/../../evil.txt", LINK),
    )
    assert_refused(tmp_path, data, "a/b/c/x", "outside")


def test_entry_written_through_a_symlink_entry_is_refused(tmp_path: Path) -> None:
    data = archive(("sub/keep.txt", b"x"), ("link", b"sub", LINK), ("link/keep.txt", b"evil"))
    assert_refused(tmp_path, data, "link/keep.txt", "beneath a symlink")


def test_symlinks_inside_the_tree_are_recreated_as_links(tmp_path: Path) -> None:
    data = archive(("lib/real.py", b"x = 1\n"), ("lib/alias.py", b"real.py", LINK))
    assert extract_zip(data, tmp_path / "out") == ["lib/alias.py", "lib/real.py"]
    link = tmp_path / "out" / "lib" / "alias.py"
    assert link.is_symlink()
    assert str(link.readlink()) == "real.py"
    assert link.read_text() == "x = 1\n"


@pytest.mark.parametrize(
    "entries",
    [
        [("a.txt", b"1"), ("a.txt", b"2")],
        [("a.txt", b"1"), ("./a.txt", b"2")],
        [("dir/a.txt", b"1"), ("dir//a.txt", b"2")],
    ],
)
def test_duplicate_entries_are_refused(tmp_path: Path, entries: list[tuple[str, bytes]]) -> None:
    assert_refused(tmp_path, archive(*entries), entries[1][0], "duplicate")


def test_a_file_that_is_also_a_directory_is_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path, archive(("a", b"1"), ("a/b", b"2")), "a", "both a file and a dir")


def test_too_many_entries_is_refused(tmp_path: Path) -> None:
    data = archive(*[(f"f{i:02}", b"") for i in range(11)])
    limits = ExtractLimits(max_entries=10)
    assert_refused(tmp_path, data, "f10", "too many entries", limits)
    assert len(extract_zip(data, tmp_path / "ok", limits=ExtractLimits(max_entries=11))) == 11


def test_total_size_beyond_the_bound_is_refused(tmp_path: Path) -> None:
    data = archive(("a.bin", os.urandom(600_000)), ("b.bin", os.urandom(600_000)))
    limits = ExtractLimits(max_total_bytes=1_000_000)
    assert_refused(tmp_path, data, "b.bin", "expands beyond 1000000 bytes", limits)


def test_compression_ratio_bomb_is_refused(tmp_path: Path) -> None:
    data = archive(("bomb.bin", b"\0" * (4 * 1024 * 1024)))
    assert_refused(tmp_path, data, "bomb.bin", "compression ratio exceeds 200:1")
    # Small entries may compress well: the ratio rule starts at ratio_min_size.
    assert extract_zip(archive(("tiny.txt", b"\0" * 500_000)), tmp_path / "ok") == ["tiny.txt"]


def test_compression_ratio_is_measured_on_real_bytes_not_header_claims(tmp_path: Path) -> None:
    honest = archive(("bomb.bin", b"\0" * (20 * 1024 * 1024)))
    with zipfile.ZipFile(io.BytesIO(honest)) as handle:
        real = handle.getinfo("bomb.bin")
    # The header claims a harmless 2:1 ratio; the archive really holds ~20 KB of input.
    forged = patch_headers(honest, compress_size=real.file_size // 2)
    with pytest.raises(ArchiveError) as caught:
        extract_zip(forged, tmp_path / "out")
    assert caught.value.entry == "bomb.bin"
    assert list(tmp_path.iterdir()) == []


def test_many_small_bombs_are_caught_by_the_archive_wide_ratio(tmp_path: Path) -> None:
    # Each entry stays under ratio_min_size, so only the archive-wide amplification counts.
    data = archive(*[(f"part{i}.bin", b"\0" * 1_000_000) for i in range(4)])
    assert_refused(tmp_path, data, "part1.bin", "archive expands more than 200:1")


def test_bomb_lying_about_its_uncompressed_size_is_refused(tmp_path: Path) -> None:
    honest = archive(("bomb.bin", b"\0" * (50 * 1024 * 1024)))
    forged = patch_headers(honest, file_size=1000)  # passes every check made on headers alone
    error = assert_refused(tmp_path, forged, "bomb.bin", "corrupt entry")
    assert "CRC" in error.message


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "not a zip archive"),
        (b"definitely not a zip file", "not a zip archive"),
        (archive(("a.txt", b"x" * 1000))[:-30], "not a zip archive"),
    ],
)
def test_non_zip_input_is_refused(tmp_path: Path, data: bytes, rule: str) -> None:
    with pytest.raises(ArchiveError, match=rule):
        extract_zip(data, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_entry_data_is_refused_by_name(tmp_path: Path) -> None:
    data = bytearray(archive(("ok.txt", b"fine"), ("broken.txt", b"some text " * 50)))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as handle:
        info = handle.getinfo("broken.txt")
    data[info.header_offset + 30 + len("broken.txt") + 5] ^= 0xFF  # inside the deflate stream
    assert_refused(tmp_path, bytes(data), "broken.txt", "corrupt entry")


def test_encrypted_and_unknown_method_entries_are_refused(tmp_path: Path) -> None:
    plain = archive(("secret.txt", b"hello"))
    assert_refused(tmp_path, patch_headers(plain, flags=0x1), "secret.txt", "unsupported entry")
    assert_refused(tmp_path, patch_headers(plain, method=99), "secret.txt", "unsupported entry")


def test_destination_must_be_missing_or_empty(tmp_path: Path) -> None:
    data = zip_files({"a.txt": b"x"})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("keep")
    with pytest.raises(InvalidInputError, match="not empty"):
        extract_zip(data, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]

    (tmp_path / "empty").mkdir()
    assert extract_zip(data, tmp_path / "empty") == ["a.txt"]
    assert extract_zip(data, tmp_path / "new" / "nested") == ["a.txt"]
    assert (tmp_path / "new" / "nested" / "a.txt").read_text() == "x"


def test_extracts_from_a_path_with_modes_and_empty_dirs(tmp_path: Path) -> None:
    source = tmp_path / "in.zip"
    source.write_bytes(zip_files({"run.sh": (b"#!/bin/sh\n", 0o755), "data/": b"", "x/y": b"y"}))
    assert extract_zip(source, tmp_path / "out") == ["run.sh", "x/y"]
    assert (tmp_path / "out" / "data").is_dir()
    assert stat.S_IMODE((tmp_path / "out" / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "x" / "y").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) & 0o755 == 0o755


def test_missing_archive_file_is_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot read archive"):
        extract_zip(tmp_path / "missing.zip", tmp_path / "out")


_VALID = zip_files({"a/b.txt": b"hello " * 20, "run.sh": (b"#!/bin/sh\n", 0o755), "e/": b""})


@settings(max_examples=150, deadline=None)
@given(
    mutations=st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ),
    cut=st.integers(0, len(_VALID)),
)
def test_property_mangled_archives_fail_only_with_archive_error(
    tmp_path_factory: pytest.TempPathFactory, mutations: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_VALID)
    for offset, value in mutations:
        data[offset] = value
    work = tmp_path_factory.mktemp("fuzz")
    try:
        extract_zip(bytes(data[: max(cut, len(data) - 40)]), work / "out")
    except ArchiveError:
        assert list(work.iterdir()) == []
    else:
        out = Path(os.path.realpath(work / "out"))
        for path in (work / "out").rglob("*"):
            assert Path(os.path.realpath(path)).is_relative_to(out)
