"""End-to-end checks of a deployed dromedary, standard library only.

``TARGET_URL`` (required) is the site's URL. The API is found through the site's config.json:
its ``apiBaseurl`` (absolute, or relative to the site), or the site itself when it is empty.
``E2E_MODE=smoke`` makes the run read-only: nothing here changes a count, so it is safe against
production (the original suite voted in production on every run).

Host names under ``.localhost`` are reached on 127.0.0.1 with their Host header, as browsers
do, so no DNS set-up is needed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import unittest
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

VERSION = re.compile(r"^([0-9a-f]{40}|[0-9]{8}-[0-9]{6})$")
ITEM_KEYS = {"label", "value", "color", "highlight"}
SITE_DIR = Path(__file__).resolve().parents[2] / "site"
TIMEOUT_SECONDS = 15


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, headers: dict[str, str] | None = None) -> Response:
    """GET ``url``; ``*.localhost`` is connected on 127.0.0.1 and keeps its Host header."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname
    address = "127.0.0.1" if host == "localhost" or host.endswith(".localhost") else host
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(address, parts.port, timeout=TIMEOUT_SECONDS)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        sent = {"Host": parts.netloc, "Accept": "*/*", **(headers or {})}
        connection.request("GET", target, headers=sent)
        answer = connection.getresponse()
        headers = {k.lower(): v for k, v in answer.getheaders()}
        return Response(answer.status, headers, answer.read())
    finally:
        connection.close()


def target_url() -> str:
    url = os.environ.get("TARGET_URL", "")
    if not url:
        raise RuntimeError("TARGET_URL is required: the URL of the site to check")
    return url.rstrip("/") + "/"


def smoke_mode() -> bool:
    return os.environ.get("E2E_MODE", "").lower() == "smoke"


def get_json(url: str, status: int = 200) -> Any:
    response = fetch(url)
    if response.status != status:
        raise AssertionError(f"GET {url}: status {response.status}, expected {status}")
    return response.json()


def api_base() -> str:
    base = get_json(urljoin(target_url(), "config.json"))["apiBaseurl"]
    if base in ("", "/"):
        return target_url()
    return urljoin(target_url(), base).rstrip("/") + "/"


def counts() -> dict[str, int]:
    return get_json(urljoin(api_base(), "data?countsOnly&nocache"))


def setUpModule() -> None:  # unittest's name for module set-up
    target_url()


class ConfigTest(unittest.TestCase):
    def test_config_has_version_and_api_base(self) -> None:
        config = get_json(urljoin(target_url(), "config.json"))
        self.assertLessEqual({"version", "apiBaseurl"}, set(config))
        self.assertRegex(config["version"], VERSION)


class DataTest(unittest.TestCase):
    def test_data_items_have_exactly_the_chart_keys(self) -> None:
        items = get_json(urljoin(api_base(), "data"))
        self.assertGreater(len(items), 0)
        for item in items:
            self.assertEqual(set(item), ITEM_KEYS)
            self.assertIsInstance(item["value"], int)

    def test_counts_only_equals_the_data_values(self) -> None:
        items = get_json(urljoin(api_base(), "data?nocache"))
        self.assertEqual(counts(), {item["label"]: item["value"] for item in items})

    def test_data_is_json_for_any_origin(self) -> None:
        # A browser on another origin sends Origin; CORS headers answer it (as API Gateway).
        response = fetch(urljoin(api_base(), "data"), {"Origin": "http://elsewhere.example"})
        self.assertTrue(response.headers["content-type"].startswith("application/json"))
        self.assertEqual(response.headers.get("access-control-allow-origin"), "*")


class SiteTest(unittest.TestCase):
    def test_served_page_equals_the_repository_page(self) -> None:
        response = fetch(target_url())
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, (SITE_DIR / "index.html").read_bytes())


class ReadOnlyIncrementTest(unittest.TestCase):
    """Answers of /increment that change nothing: safe in smoke mode."""

    def test_unknown_colour_is_a_client_error(self) -> None:
        answer = get_json(urljoin(api_base(), "increment?color=no-such-colour"), status=400)
        self.assertEqual(answer, {"error": "Unknown color"})

    def test_missing_colour_counts_zero(self) -> None:
        self.assertEqual(get_json(urljoin(api_base(), "increment")), {"count": 0})


@unittest.skipIf(smoke_mode(), "E2E_MODE=smoke: no votes against this environment")
class IncrementTest(unittest.TestCase):
    def test_increment_adds_one_vote(self) -> None:
        before = counts()
        colour = sorted(before)[0]
        answer = get_json(urljoin(api_base(), f"increment?color={quote(colour)}"))
        self.assertEqual(answer, {"count": before[colour] + 1})
        self.assertEqual(counts()[colour], before[colour] + 1)
