"""Multipart uploads: Create, UploadPart, Complete and Abort.

boto3's ``upload_file``/``upload_fileobj`` and ``aws s3 cp`` switch to multipart uploads above
8 MB, so an artifact client needs them. Parts are spooled to files in a private directory (one
sub-directory per upload, named by its random id) and handed to the store as one stream on
completion; the store therefore keeps a single object whose ETag is the MD5 of the whole
content, where S3 would give ``md5-of-part-md5s-N`` (clients must not rely on either form).

Uploads live in memory: a restart forgets them (clients retry the upload). Parts are not held
to S3's 5 MiB minimum; the total is held to the endpoint's object size limit.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from caravan.artifacts.keys import ContentDigest
from caravan.server.s3.body import entity_too_large
from caravan.server.s3.context import Call, UploadFields, child_text, children, malformed_xml
from caravan.server.s3.objects import file_blocks
from caravan.server.s3.responses import Reply, S3Error, document, element, invalid_argument

MAX_PARTS = 10_000
MAX_OPEN_UPLOADS = 1000
STALE_UPLOAD_SECONDS = 7 * 24 * 3600
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Part:
    etag: str
    size: int
    path: Path


@dataclass
class Upload:
    bucket: str
    key: str
    fields: UploadFields
    directory: Path
    created: float = field(default_factory=time.time)
    parts: dict[int, Part] = field(default_factory=dict)


class Uploads:
    """The multipart uploads in progress, and the directory their parts wait in."""

    def __init__(self, directory: Path | None = None) -> None:
        self._root = directory
        self._open: dict[str, Upload] = {}
        self._lock = threading.Lock()  # create and discard run in worker threads

    def create(self, bucket: str, key: str, fields: UploadFields) -> str:
        self._forget_stale()
        if len(self._open) >= MAX_OPEN_UPLOADS:  # racing creates may pass together: harmless
            raise S3Error(
                "SlowDown", f"More than {MAX_OPEN_UPLOADS} multipart uploads are in progress", 503
            )
        upload_id = uuid.uuid4().hex
        directory = self._directory() / upload_id
        directory.mkdir()
        with self._lock:
            self._open[upload_id] = Upload(bucket, key, fields, directory)
        return upload_id

    def get(self, upload_id: str, bucket: str, key: str) -> Upload:
        upload = self._open.get(upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise S3Error(
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed.",
                404,
                UploadId=upload_id[:100],
            )
        return upload

    def discard(self, upload_id: str) -> None:
        with self._lock:
            upload = self._open.pop(upload_id, None)
        if upload is not None:
            shutil.rmtree(upload.directory, ignore_errors=True)

    def _directory(self) -> Path:
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="caravan-s3-uploads-"))
                weakref.finalize(self, shutil.rmtree, self._root, ignore_errors=True)
            root = self._root
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _forget_stale(self) -> None:
        cutoff = time.time() - STALE_UPLOAD_SECONDS
        with self._lock:
            stale = [uid for uid, upload in self._open.items() if upload.created < cutoff]
        for upload_id in stale:
            self.discard(upload_id)


# ----------------------------------------------------------------------------- operations


async def create_multipart_upload(call: Call) -> Reply:
    fields = call.upload_fields()
    await call.require_bucket()
    upload_id = await call.run(call.uploads.create, call.bucket, call.key, fields)
    body = document(
        "InitiateMultipartUploadResult",
        [element("Bucket", call.bucket), element("Key", call.key), element("UploadId", upload_id)],
    )
    reply = Reply(200, [("Content-Type", "application/xml")], body)
    return reply.header(
        "x-amz-checksum-algorithm", call.request.headers.get("x-amz-checksum-algorithm")
    )


async def upload_part(call: Call) -> Reply:
    number = _part_number(call.request.query.get("partNumber", ""))
    upload = call.uploads.get(call.request.query["uploadId"], call.bucket, call.key)
    others = sum(part.size for n, part in upload.parts.items() if n != number)
    room = call.settings.max_body_bytes - others
    if room < 0:
        raise entity_too_large(call.settings.max_body_bytes, others)
    target = upload.directory / f"{number:05d}.part"
    (etag, size), decoder = await call.upload(
        lambda body: _write_part(target, body), call.body_decoder(room)
    )
    upload.parts[number] = Part(etag, size, target)
    reply = Reply().header("ETag", etag)
    for name, value in decoder.echo.items():
        reply.header(name, value)
    return reply


async def complete_multipart_upload(call: Call) -> Reply:
    upload_id = call.request.query["uploadId"]
    upload = call.uploads.get(upload_id, call.bucket, call.key)
    chosen = _chosen_parts(await call.read_xml(), upload)
    total = sum(part.size for part in chosen)
    if total > call.settings.max_body_bytes:
        raise entity_too_large(call.settings.max_body_bytes, total)
    await call.require_bucket()
    store, bucket, key = call.store, call.bucket, call.key
    info = await call.run(
        lambda: store.put_stream(bucket, key, _concatenated(chosen), **upload.fields.as_kwargs())
    )
    await call.run(call.uploads.discard, upload_id)
    body = document(
        "CompleteMultipartUploadResult",
        [
            element("Location", f"/{bucket}/{key}"),
            element("Bucket", bucket),
            element("Key", key),
            element("ETag", info.etag),
        ],
    )
    return Reply(200, [("Content-Type", "application/xml")], body)


async def abort_multipart_upload(call: Call) -> Reply:
    upload_id = call.request.query["uploadId"]
    call.uploads.get(upload_id, call.bucket, call.key)
    await call.run(call.uploads.discard, upload_id)
    return Reply(204)


# ------------------------------------------------------------------------------- helpers


def _part_number(text: str) -> int:
    number = int(text) if text.isascii() and text.isdigit() and len(text) < 6 else 0
    if not 1 <= number <= MAX_PARTS:
        raise invalid_argument(
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
            "partNumber",
            text[:20],
        )
    return number


def _write_part(target: Path, body: Iterator[bytes]) -> tuple[str, int]:
    """Spool one part (written aside, then renamed: a failed retry leaves the old part)."""
    digest = ContentDigest()
    temp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temp.open("wb") as handle:
            for block in body:
                digest.update(block)
                handle.write(block)
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)
    return digest.etag, digest.size


def _chosen_parts(root: ET.Element, upload: Upload) -> list[Part]:
    """The parts CompleteMultipartUpload names, checked against those uploaded, in order."""
    listed = children(root, "Part")
    if not listed:
        raise malformed_xml()
    chosen: list[Part] = []
    previous = 0
    for item in listed:
        number_text = (child_text(item, "PartNumber") or "").strip()
        number = int(number_text) if number_text.isascii() and number_text.isdigit() else 0
        if number <= previous:
            raise S3Error(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. Parts must be ordered by part "
                "number.",
                400,
            )
        previous = number
        part = upload.parts.get(number)
        etag = (child_text(item, "ETag") or "").strip().strip('"')
        if part is None or part.etag.strip('"') != etag:
            raise S3Error(
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not have "
                "been uploaded, or the specified entity tag may not match the part's entity tag.",
                400,
                PartNumber=str(number),
                ETag=etag[:100],
            )
        chosen.append(part)
    return chosen


def _concatenated(parts: list[Part]) -> Iterator[bytes]:
    for part in parts:
        with part.path.open("rb") as handle:
            yield from file_blocks(handle)
