"""Serving a site with S3 website semantics: index and error documents, folder redirects,
metadata, conditional requests, methods, and paths that try to leave the version."""

from __future__ import annotations

from email.utils import format_datetime
from pathlib import Path

import pytest
from site_client import request
from starlette.types import ASGIApp

from caravan.platform.sites import SiteStore, SiteVersion, site_app

FILES = {
    "index.html": "<p>home</p>",
    "docs/index.html": "<p>docs</p>",
    "docs/guide.html": "<p>guide</p>",
    "docs/deep/index.html": "<p>deep</p>",
    "photos/index.html": "<p>photos</p>",
    "app.js": "run()",
    "space name.txt": "spaced",
}


def publish(store: SiteStore, root: Path, files: dict[str, str], label: str = "v") -> SiteVersion:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return store.publish("demo", root, config={"version": label}, version_label=label)


@pytest.fixture
def store(tmp_path: Path) -> SiteStore:
    store = SiteStore(tmp_path / "sites")
    publish(store, tmp_path / "src", FILES)
    return store


@pytest.fixture
def app(store: SiteStore) -> ASGIApp:
    return site_app(store, "demo")


async def test_index_document_at_the_root_and_in_folders(app: ASGIApp) -> None:
    for path, body in (
        ("/", "<p>home</p>"),
        ("/docs/", "<p>docs</p>"),
        ("/docs/deep/", "<p>deep</p>"),
    ):
        answer = await request(app, path)
        assert (answer.status, answer.body.decode()) == (200, body), path
    assert (await request(app, "/docs/guide.html")).body == b"<p>guide</p>"
    assert (await request(app, "/space%20name.txt")).body == b"spaced"


async def test_a_folder_without_slash_redirects_to_the_slash(app: ASGIApp) -> None:
    answer = await request(app, "/docs?tab=1")
    assert (answer.status, answer.headers["location"], answer.body) == (302, "/docs/?tab=1", b"")
    assert (await request(app, "/docs/deep")).headers["location"] == "/docs/deep/"
    mounted = await request(app, "/docs", root_path="/site")
    assert mounted.headers["location"] == "/site/docs/"
    assert (await request(app, "/photos")).headers["location"] == "/photos/"
    assert (await request(app, "/app.js")).status == 200  # an object: no redirect


async def test_stored_metadata_is_served(app: ASGIApp, store: SiteStore) -> None:
    version = store.current("demo")
    assert version is not None
    page = await request(app, "/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["etag"] == version.files["index.html"].etag
    assert page.headers["content-length"] == str(len("<p>home</p>"))
    assert page.headers["last-modified"] == format_datetime(version.created, usegmt=True)
    script = await request(app, "/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000"
    config = await request(app, "/config.json")
    assert config.headers["content-type"] == "application/json"
    assert config.headers["cache-control"] == "no-cache, no-store, must-revalidate"


async def test_conditional_requests_answer_304(app: ASGIApp) -> None:
    first = await request(app, "/app.js")
    etag = first.headers["etag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        answer = await request(app, "/app.js", headers={"If-None-Match": value})
        assert (answer.status, answer.body) == (304, b""), value
        assert answer.headers["etag"] == etag and "content-length" not in answer.headers
    changed = await request(app, "/app.js", headers={"If-None-Match": '"stale"'})
    assert (changed.status, changed.body) == (200, b"run()")
    since = await request(
        app, "/app.js", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert since.status == 304
    old = await request(
        app, "/app.js", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    assert old.status == 200
    junk = await request(app, "/app.js", headers={"If-Modified-Since": "yesterday"})
    assert junk.status == 200


async def test_head_has_the_headers_and_no_body(app: ASGIApp) -> None:
    answer = await request(app, "/docs/guide.html", method="HEAD")
    assert answer.status == 200 and answer.body == b""
    assert answer.headers["content-length"] == str(len("<p>guide</p>"))
    missing = await request(app, "/nope", method="HEAD")
    assert missing.status == 404 and missing.body == b""


async def test_other_methods_are_405(app: ASGIApp) -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        answer = await request(app, "/", method=method)
        assert answer.status == 405, method
        assert answer.headers["allow"] == "GET, HEAD"
        assert b"405 Method Not Allowed" in answer.body


async def test_missing_keys_get_a_plain_html_404(app: ASGIApp) -> None:
    answer = await request(app, "/missing.html")
    assert answer.status == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert b"NoSuchKey" in answer.body and b"missing.html" in answer.body
    assert (await request(app, "/photos/missing/")).status == 404


async def test_the_error_document_answers_4xx(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites")
    publish(store, tmp_path / "src", {"index.html": "home", "error.html": "<p>oops</p>"})
    app = site_app(store, "demo")
    for method, status in (("GET", 404), ("DELETE", 405)):
        answer = await request(app, "/nowhere", method=method)
        assert (answer.status, answer.body) == (status, b"<p>oops</p>")
        assert answer.headers["content-type"] == "text/html; charset=utf-8"


async def test_a_site_without_a_version_is_404(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites")
    for site in ("never-published", "../bad name"):
        answer = await request(site_app(store, site), "/")
        assert answer.status == 404 and b"NoSuchBucket" in answer.body


@pytest.mark.parametrize(
    "path",
    [
        "/../manifest.json",
        "/docs/../../manifest.json",
        "/%2e%2e/manifest.json",
        "/%2E%2E/%2e%2e/current.json",
        "/docs/%2e%2e/%2e%2e/manifest.json",
        "/..%2fmanifest.json",
        "/..%5cmanifest.json",
        "/docs\\..\\..\\manifest.json",
        "/%5c..%5cmanifest.json",
        "/./index.html",
        "/%00index.html",
        "/%252e%252e/manifest.json",
        "//etc/passwd",
        "/../../../../../../etc/passwd",
    ],
)
async def test_paths_never_escape_the_version(app: ASGIApp, path: str) -> None:
    answer = await request(app, path)
    assert answer.status == 404, path
    assert (
        b"home" not in answer.body and b'"files"' not in answer.body and b"root:" not in answer.body
    )


async def test_a_rollback_is_served_at_once(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites")
    first = publish(store, tmp_path / "one", {"index.html": "one"}, "one")
    publish(store, tmp_path / "two", {"index.html": "two"}, "two")
    app = site_app(store, "demo")
    assert (await request(app, "/")).body == b"two"
    store.activate("demo", first.version_id)
    assert (await request(app, "/")).body == b"one"
    assert (await request(app, "/config.json")).body.decode().count('"one"') == 1


async def test_large_files_stream_completely(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites")
    big = bytes(range(256)) * 4096  # 1 MiB: several chunks
    root = tmp_path / "src"
    root.mkdir()
    (root / "blob.bin").write_bytes(big)
    store.publish("demo", root, version_label="big")
    answer = await request(site_app(store, "demo"), "/blob.bin")
    assert answer.body == big and answer.headers["content-type"] == "application/octet-stream"
