"""Service and bucket operations: ListBuckets, CreateBucket, HeadBucket, GetBucketLocation,
ListObjects (V1 and V2) and DeleteObjects."""

from __future__ import annotations

from caravan.artifacts.keys import validate_key
from caravan.errors import InvalidInputError
from caravan.server.s3.context import Call, child_text, children, local_name
from caravan.server.s3.listing import list_page, parse_query, v1_document, v2_document
from caravan.server.s3.responses import (
    Reply,
    S3Error,
    document,
    element,
    iso_date,
    no_such_bucket,
    xml_reply,
    xml_text,
)

MAX_DELETE_KEYS = 1000
OWNER_ID = "caravan"


async def list_buckets(call: Call) -> Reply:
    names = await call.run(call.store.list_buckets)
    # The store keeps no creation date; the endpoint's start time stands in for it.
    created = iso_date(call.started)
    buckets = "".join(
        f"<Bucket>{element('Name', name)}{element('CreationDate', created)}</Bucket>"
        for name in names
    )
    owner = f"<Owner>{element('ID', OWNER_ID)}{element('DisplayName', OWNER_ID)}</Owner>"
    return xml_reply(document("ListAllMyBucketsResult", [owner, f"<Buckets>{buckets}</Buckets>"]))


async def create_bucket(call: Call) -> Reply:
    configuration = await call.read_optional_xml()
    if configuration is not None and local_name(configuration) != "CreateBucketConfiguration":
        raise S3Error(
            "MalformedXML",
            "The XML you provided was not a CreateBucketConfiguration document",
            400,
        )
    # As in us-east-1, creating a bucket you already have succeeds.
    await call.run(call.store.create_bucket, call.bucket)
    return Reply().header("Location", f"/{call.bucket}")


async def head_bucket(call: Call) -> Reply:
    await call.require_bucket()
    return Reply(omit_body=True).header("x-amz-bucket-region", call.settings.region)


async def get_bucket_location(call: Call) -> Reply:
    await call.require_bucket()
    # us-east-1 answers with an empty constraint; botocore reads that as us-east-1.
    region = "" if call.settings.region == "us-east-1" else call.settings.region
    return xml_reply(document("LocationConstraint", [xml_text(region)]))


async def list_objects_v2(call: Call) -> Reply:
    return await _list(call, v2=True)


async def list_objects(call: Call) -> Reply:
    return await _list(call, v2=False)


async def _list(call: Call, *, v2: bool) -> Reply:
    params = call.request.query
    query = parse_query(params, v2=v2)
    if query.prefix:
        try:
            validate_key(query.prefix)
        except InvalidInputError as error:
            raise S3Error("InvalidArgument", error.message, 400) from None
    bucket, store = call.bucket, call.store
    if not await call.run(store.bucket_exists, bucket):
        raise no_such_bucket(bucket)
    page = await call.run(lambda: list_page(store.list(bucket, query.prefix), query))
    render = v2_document if v2 else v1_document
    return xml_reply(render(bucket, query, page, params))


async def delete_objects(call: Call) -> Reply:
    root = await call.read_xml()
    objects = children(root, "Object")
    if local_name(root) != "Delete" or not objects or len(objects) > MAX_DELETE_KEYS:
        raise S3Error(
            "MalformedXML",
            f"The Delete document must name 1 to {MAX_DELETE_KEYS} objects",
            400,
        )
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    await call.require_bucket()
    results: list[str] = []
    for item in objects:
        key = child_text(item, "Key") or ""
        error = await _delete_one(call, key)
        if error is not None:
            results.append(
                f"<Error>{element('Key', key)}{element('Code', error.code)}"
                f"{element('Message', error.message)}</Error>"
            )
        elif not quiet:
            results.append(f"<Deleted>{element('Key', key)}</Deleted>")
    return xml_reply(document("DeleteResult", results))


async def _delete_one(call: Call, key: str) -> S3Error | None:
    try:
        validate_key(key)
        await call.authorize(call.bucket, key, "s3:DeleteObject")
        await call.run(call.store.delete, call.bucket, key)
    except InvalidInputError as error:
        return S3Error("InvalidArgument", error.message, 400)
    except S3Error as error:
        return error
    return None
