"""Publishing sites: complete versions, one atomic switch, stale files gone, rollback, pruning."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

import pytest
from site_client import request

from caravan.artifacts.zipfiles import zip_files
from caravan.errors import InvalidInputError, NotFoundError
from caravan.platform.sites import (
    CONFIG_CACHE_CONTROL,
    SiteStore,
    SiteVersionNotFoundError,
    content_type_for,
    site_app,
    site_config,
)


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def test_a_directory_is_published_with_subfolders_and_config(tmp_path: Path) -> None:
    source = tree(
        tmp_path / "dist",
        {
            "index.html": "<h1/>",
            "js/app.js": "x()",
            "img/deep/logo.png": b"\x89PNG",
            "data.json": "{}",
        },
    )
    store = SiteStore(tmp_path / "sites")
    config = site_config("http://api.localhost/test", "3f2c1e0", "exec-1")
    version = store.publish("demo", source, config=config, version_label="3f2c1e0")
    assert version.version_id == "1" and version.label == "3f2c1e0"
    assert sorted(version.files) == [
        "config.json",
        "data.json",
        "img/deep/logo.png",
        "index.html",
        "js/app.js",
    ]
    assert json.loads((version.root / "config.json").read_text()) == {
        "apiBaseurl": "http://api.localhost/test/",
        "version": "3f2c1e0",
        "executionId": "exec-1",
    }
    meta = version.files
    assert meta["config.json"].content_type == "application/json"
    assert meta["config.json"].cache_control == CONFIG_CACHE_CONTROL
    assert meta["index.html"].content_type == "text/html; charset=utf-8"
    assert meta["index.html"].cache_control == "no-cache"
    assert meta["js/app.js"].content_type == "text/javascript; charset=utf-8"
    assert meta["js/app.js"].cache_control == "public, max-age=31536000"
    assert meta["img/deep/logo.png"].content_type == "image/png"
    assert meta["data.json"].content_type == "application/json"
    assert re.fullmatch(r'"[0-9a-f]{32}"', meta["index.html"].etag)
    assert store.current("demo") == version and store.sites() == ["demo"]


def test_zip_files_and_zip_bytes_are_published(tmp_path: Path) -> None:
    archive = zip_files({"index.html": b"zip", "css/site.css": b"body{}"})
    (tmp_path / "site.zip").write_bytes(archive)
    store = SiteStore(tmp_path / "sites")
    from_path = store.publish("demo", tmp_path / "site.zip", version_label="a")
    from_bytes = store.publish("demo", archive, config={"version": "b"}, version_label="b")
    assert sorted(from_path.files) == ["css/site.css", "index.html"]
    assert sorted(from_bytes.files) == ["config.json", "css/site.css", "index.html"]
    assert from_bytes.files["css/site.css"].content_type == "text/css; charset=utf-8"


def test_stale_files_are_gone_and_rollback_brings_them_back(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites")
    one = store.publish(
        "demo", tree(tmp_path / "v1", {"index.html": "one", "old.js": "1"}), version_label="one"
    )
    two = store.publish(
        "demo", tree(tmp_path / "v2", {"index.html": "two", "new.js": "2"}), version_label="two"
    )
    current = store.current("demo")
    assert current is not None and current.version_id == "2"
    assert "old.js" not in current.files and not (current.root / "old.js").exists()
    assert [v.label for v in store.versions("demo")] == ["one", "two"]
    rolled = store.activate("demo", one.version_id)
    assert rolled == one and store.current("demo") == one
    assert (one.root / "old.js").read_text() == "1"
    store.activate("demo", two.version_id)
    assert store.current("demo") == two


def test_pruning_keeps_the_newest_and_never_the_current(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites", keep=3)
    source = tree(tmp_path / "src", {"index.html": "x"})
    for n in range(5):
        store.publish("demo", source, version_label=f"v{n}")
    assert [v.version_id for v in store.versions("demo")] == ["3", "4", "5"]  # pruned on publish
    store.activate("demo", "3")  # roll back to the oldest kept version
    assert store.prune("demo", keep=1) == ["4"]  # 3 is current: kept though it is the oldest
    assert [v.version_id for v in store.versions("demo")] == ["3", "5"]
    assert store.prune("demo", keep=0) == ["5"]
    current = store.current("demo")
    assert current is not None and current.version_id == "3"
    assert (current.root / "index.html").read_text() == "x"


def test_unknown_sites_versions_and_bad_input(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites")
    assert store.current("nothing") is None
    with pytest.raises(NotFoundError, match="site 'nothing' does not exist"):
        store.versions("nothing")
    store.publish("demo", tree(tmp_path / "s", {"index.html": "x"}), version_label="x")
    with pytest.raises(SiteVersionNotFoundError):
        store.activate("demo", "9")
    with pytest.raises(SiteVersionNotFoundError):
        store.activate("demo", "../demo")
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(InvalidInputError, match="site name"):
            store.publish(bad, tmp_path / "s", version_label="x")
    with pytest.raises(InvalidInputError, match="neither a directory nor a zip"):
        store.publish("demo", tmp_path / "missing", version_label="x")
    with pytest.raises(InvalidInputError, match="not JSON"):
        store.publish("demo", tmp_path / "s", config={"when": object()}, version_label="x")
    with pytest.raises(InvalidInputError):
        store.publish("demo", b"not a zip", version_label="x")
    assert [v.version_id for v in store.versions("demo")] == ["1"]  # failed publishes left nothing
    assert sorted(p.name for p in (tmp_path / "sites" / "demo").iterdir()) == [
        "current.json",
        "versions",
    ]


def test_links_out_of_the_source_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    source = tree(tmp_path / "src", {"index.html": "x", "inside.txt": "ok"})
    (source / "alias.txt").symlink_to(source / "inside.txt")
    store = SiteStore(tmp_path / "sites")
    version = store.publish("demo", source, version_label="links")
    assert (version.root / "alias.txt").read_text() == "ok" and not (
        version.root / "alias.txt"
    ).is_symlink()
    (source / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidInputError, match=r"'leak\.txt' links outside the site"):
        store.publish("demo", source, version_label="leak")


def test_content_types_fall_back_to_the_builtin_table() -> None:
    assert content_type_for("a.HTML") == "text/html; charset=utf-8"
    assert content_type_for("font.woff2") == "font/woff2"
    assert content_type_for("photo.jpeg") == "image/jpeg"
    assert content_type_for("blob.unknownext") == "application/octet-stream"


def test_assets_can_be_served_without_long_caching(tmp_path: Path) -> None:
    store = SiteStore(tmp_path / "sites", asset_max_age=0)
    version = store.publish("demo", tree(tmp_path / "s", {"app.js": "x"}), version_label="x")
    assert version.files["app.js"].cache_control == "no-cache"


def test_readers_never_see_a_mix_of_versions_while_publishing(tmp_path: Path) -> None:
    """Each response belongs to exactly one version; no file present in both is ever missing."""
    store = SiteStore(tmp_path / "sites")
    filler = "x" * 50_000  # big enough that a half-written file would show
    pages = {f"v{n}": f"<!-- v{n} -->{filler}<!-- v{n} -->".encode() for n in range(9)}
    sources = [
        tree(tmp_path / f"src{n}", {"index.html": pages[f"v{n}"], f"only-{n}.js": str(n)})
        for n in range(9)
    ]
    store.publish("demo", sources[0], config={"version": "v0"}, version_label="v0")
    app = site_app(store, "demo")
    stop = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def reader() -> None:
        async def hammer() -> None:
            while not stop.is_set():
                page = await request(app, "/")
                config = await request(app, "/config.json")
                if page.status != 200 or config.status != 200:
                    problems.append(f"status {page.status}/{config.status}")
                    continue
                markers = set(re.findall(r"<!-- (v\d+) -->", page.body.decode()))
                if len(markers) != 1 or page.body != pages[next(iter(markers))]:
                    problems.append(f"mixed or partial page {markers}")
                seen.update(markers)
                seen.add(json.loads(config.body)["version"])

        asyncio.run(hammer())

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for n in range(1, 9):
        store.publish("demo", sources[n], config={"version": f"v{n}"}, version_label=f"v{n}")
    stop.set()
    for thread in threads:
        thread.join()
    assert problems == []
    assert len(seen) >= 2  # the readers did overlap with publishing
    final = store.current("demo")
    assert final is not None and final.label == "v8" and "only-1.js" not in final.files
