"""The checksums S3 clients send: published check values, and the table-driven CRCs agree
with a bit-by-bit reference however the data is split."""

from __future__ import annotations

import base64
import hashlib
import itertools
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan.server.s3.checksums import ALGORITHMS, compute, decode_b64, new_checksum


@pytest.mark.parametrize(
    ("algorithm", "check"),
    [  # the "check" value of each CRC's catalogue entry: the CRC of b"123456789"
        ("crc32", "cbf43926"),
        ("crc32c", "e3069283"),
        ("crc64nvme", "ae8b14860a799888"),
    ],
)
def test_crcs_give_their_catalogue_check_values(algorithm: str, check: str) -> None:
    assert compute(algorithm, b"123456789").hex() == check


def test_hashes_are_hashlibs() -> None:
    assert compute("sha256", b"x") == hashlib.sha256(b"x").digest()
    assert compute("sha1", b"x") == hashlib.sha1(b"x", usedforsecurity=False).digest()


def test_the_crc32c_of_the_aws_example_payload_is_the_documented_trailer() -> None:
    # sigv4-streaming-trailers.html sends x-amz-checksum-crc32c:sOO8/Q== for 66560 bytes of "a".
    assert base64.b64encode(compute("crc32c", b"a" * 66560)).decode() == "sOO8/Q=="


def bitwise(data: bytes, reversed_poly: int, width: int) -> bytes:
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ reversed_poly if crc & 1 else crc >> 1
    return (crc ^ mask).to_bytes(width // 8, "big")


@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=5))
def test_split_updates_match_a_bitwise_reference(data: bytes, cuts: list[int]) -> None:
    references = {
        "crc32c": bitwise(data, 0x82F63B78, 32),
        "crc64nvme": bitwise(data, 0x9A6C9329AC4BC9B5, 64),
        "crc32": zlib.crc32(data).to_bytes(4, "big"),
    }
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    for algorithm, expected in references.items():
        checksum = new_checksum(algorithm)
        for start, end in itertools.pairwise(bounds):
            checksum.update(data[start:end])
        assert checksum.digest() == expected


def test_every_algorithm_s3_accepts_is_available() -> None:
    assert set(ALGORITHMS) == {"crc32", "crc32c", "crc64nvme", "sha1", "sha256"}


@pytest.mark.parametrize("value", ["", "AAAA", "not base64!", "AAAAAAA=", "AAAAAAAAAAA="])
def test_a_header_value_of_the_wrong_size_or_alphabet_is_refused(value: str) -> None:
    assert decode_b64(value, 4) is None


def test_a_well_formed_header_value_decodes() -> None:
    assert decode_b64(" AAAAAA== ", 4) == b"\0\0\0\0"
