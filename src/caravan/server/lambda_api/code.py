"""Where a deployment package comes from: ``ZipFile`` (base64 in the JSON) or ``S3Bucket`` +
``S3Key`` (an object of the artifact store the app was given, as the seed's deploy uses).

The same members appear under ``Code`` in CreateFunction and at the top of UpdateFunctionCode;
``where`` ("Code." or "") makes every message name the member as the client spelled it. Container
images and S3 object versions do not exist on the local platform and are refused by name.
"""

from __future__ import annotations

import base64
import binascii

from caravan.artifacts.store import ArtifactStore
from caravan.errors import InvalidInputError, NotFoundError, ObjectNotFoundError
from caravan.platform.functions import InvalidParameterValueException
from caravan.platform.functions.rules import MAX_ZIP_BYTES
from caravan.server.lambda_api.requests import Call, Fields


async def load_code(call: Call, fields: Fields) -> bytes:
    """The zip the members of ``fields`` point at (read off the event loop for S3)."""
    where = fields.where
    _refuse_unsupported(fields)
    zip_file = fields.string("ZipFile")
    bucket, key = fields.string("S3Bucket"), fields.string("S3Key")
    if zip_file is not None:
        if bucket is not None or key is not None:
            raise InvalidParameterValueException(
                f"Please do not provide other FunctionCode parameters when providing a "
                f"FunctionCode {where}ZipFile (got {where}S3Bucket/{where}S3Key as well)"
            )
        return _decode(zip_file, where)
    if bucket is None and key is None:
        raise InvalidParameterValueException(
            f"Please provide a source for function code: {where}ZipFile, or {where}S3Bucket "
            f"and {where}S3Key"
        )
    if bucket is None or key is None:
        missing = "S3Bucket" if bucket is None else "S3Key"
        raise InvalidParameterValueException(
            f"{where}{missing} is required when the code comes from S3 "
            f"({where}S3Bucket and {where}S3Key go together)"
        )
    store = call.artifacts
    if store is None:
        raise InvalidParameterValueException(
            f"{where}S3Bucket/{where}S3Key are not supported by this server (it has no artifact "
            f"store); send the zip as {where}ZipFile"
        )
    return await call.run(_read_object, store, bucket, key, where)


def _refuse_unsupported(fields: Fields) -> None:
    where = fields.where
    for name, why in (
        ("ImageUri", "container images are not supported on the local platform; use a zip"),
        ("S3ObjectVersion", "the artifact store keeps one version per key; omit it"),
    ):
        if fields.string(name):
            raise InvalidParameterValueException(f"{where}{name}: {why}")


def _decode(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameterValueException(
            f"{where}ZipFile is not valid base64 ({exc}); SDKs encode the zip's bytes for you, "
            "a raw HTTP client must send base64"
        ) from None


def _read_object(store: ArtifactStore, bucket: str, key: str, where: str) -> bytes:
    named = f"({where}S3Bucket={bucket!r}, {where}S3Key={key!r})"
    try:
        info = store.head(bucket, key)
        if info is None:
            raise ObjectNotFoundError(key)
        if info.size > MAX_ZIP_BYTES:
            raise InvalidParameterValueException(
                f"The deployment package {named} is {info.size} bytes; the limit is "
                f"{MAX_ZIP_BYTES} bytes"
            )
        return store.get_bytes(bucket, key)
    except NotFoundError:  # the key, or its whole bucket
        raise InvalidParameterValueException(
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The "
            f"specified key does not exist. {named}"
        ) from None
    except InvalidParameterValueException:
        raise
    except InvalidInputError as exc:  # a bucket or key the store refuses to address
        message = f"{where}S3Bucket/{where}S3Key: {exc.message}"
        raise InvalidParameterValueException(message) from None
