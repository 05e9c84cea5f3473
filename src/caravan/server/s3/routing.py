"""Which S3 operation a request is: by method, by whether it names a bucket and a key, and by
its subresource (``?uploads``, ``?location``, ...). Operations caravan does not serve are
``501 NotImplemented`` naming the operation; methods S3 has no operation for are ``405``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from caravan.server.s3 import buckets, multipart, objects
from caravan.server.s3.context import Call
from caravan.server.s3.requests import S3Request
from caravan.server.s3.responses import Reply, S3Error, not_implemented

Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Operation:
    name: str
    # The IAM action the authorize hook is asked about; None when the handler asks itself
    # (DeleteObjects asks once per key).
    action: str | None
    handler: Handler


# Operations whose name is not simply <Verb><Bucket|Object><Subresource>.
_NAMES = {
    ("GET", False, "uploads"): "ListMultipartUploads",
    ("GET", False, "versions"): "ListObjectVersions",
    ("GET", True, "uploadId"): "ListParts",
    ("GET", True, "partNumber"): "GetObject with partNumber",
    ("HEAD", True, "partNumber"): "HeadObject with partNumber",
    ("POST", True, "restore"): "RestoreObject",
    ("POST", True, "select"): "SelectObjectContent",
    ("PUT", True, "renameObject"): "RenameObject",
}
_VERBS = {"GET": "Get", "PUT": "Put", "POST": "Post", "DELETE": "Delete", "HEAD": "Head"}


def route(request: S3Request) -> Operation:
    method = request.method
    if method not in _VERBS:
        raise method_not_allowed(method, "SERVICE" if request.bucket is None else "OBJECT")
    if request.bucket is None:
        if method == "GET":
            return Operation("ListBuckets", "s3:ListAllMyBuckets", buckets.list_buckets)
        raise method_not_allowed(method, "SERVICE")
    subresources = tuple(sorted(request.subresources()))
    found = (
        _object_operation(request, subresources)
        if request.key is not None
        else _bucket_operation(request, subresources)
    )
    if found is None:
        raise not_implemented(_name(method, request.key is not None, subresources))
    return found


def _bucket_operation(request: S3Request, subresources: tuple[str, ...]) -> Operation | None:
    method = request.method
    if not subresources:
        if method == "GET":
            if request.query.get("list-type") == "2":
                return Operation("ListObjectsV2", "s3:ListBucket", buckets.list_objects_v2)
            return Operation("ListObjects", "s3:ListBucket", buckets.list_objects)
        if method == "HEAD":
            return Operation("HeadBucket", "s3:ListBucket", buckets.head_bucket)
        if method == "PUT":
            return Operation("CreateBucket", "s3:CreateBucket", buckets.create_bucket)
        return None
    if method == "GET" and subresources == ("location",):
        return Operation("GetBucketLocation", "s3:GetBucketLocation", buckets.get_bucket_location)
    if method == "POST" and subresources == ("delete",):
        return Operation("DeleteObjects", None, buckets.delete_objects)
    return None


def _object_operation(request: S3Request, subresources: tuple[str, ...]) -> Operation | None:
    method = request.method
    copy = "x-amz-copy-source" in request.headers
    if not subresources:
        if method == "PUT" and copy:
            return Operation("CopyObject", "s3:PutObject", objects.copy_object)
        return {
            "PUT": Operation("PutObject", "s3:PutObject", objects.put_object),
            "GET": Operation("GetObject", "s3:GetObject", objects.get_object),
            "HEAD": Operation("HeadObject", "s3:GetObject", objects.head_object),
            "DELETE": Operation("DeleteObject", "s3:DeleteObject", objects.delete_object),
        }.get(method)
    if method == "PUT" and subresources == ("partNumber", "uploadId"):
        if copy:
            raise not_implemented("UploadPartCopy")
        return Operation("UploadPart", "s3:PutObject", multipart.upload_part)
    if method == "POST" and subresources == ("uploads",):
        return Operation("CreateMultipartUpload", "s3:PutObject", multipart.create_multipart_upload)
    if method == "POST" and subresources == ("uploadId",):
        return Operation(
            "CompleteMultipartUpload", "s3:PutObject", multipart.complete_multipart_upload
        )
    if method == "DELETE" and subresources == ("uploadId",):
        return Operation(
            "AbortMultipartUpload", "s3:AbortMultipartUpload", multipart.abort_multipart_upload
        )
    return None


def _name(method: str, on_object: bool, subresources: tuple[str, ...]) -> str:
    target = "Object" if on_object else "Bucket"
    if not subresources:
        return f"{_VERBS[method]}{target}"  # DeleteBucket, PostObject
    sub = subresources[0]
    special = _NAMES.get((method, on_object, sub))
    if special is not None:
        return special
    camel = "".join(part[:1].upper() + part[1:] for part in sub.split("-"))
    return f"{_VERBS[method]}{target}{camel}"


def method_not_allowed(method: str, resource_type: str) -> S3Error:
    return S3Error(
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        405,
        Method=method[:20],
        ResourceType=resource_type,
    )
