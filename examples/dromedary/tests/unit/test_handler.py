"""The handler's routing with API Gateway proxy events: statuses, bodies and headers."""

import json
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from dromedary import api
from dromedary.colours import COLOURS, INITIAL_COUNT

from .events import proxy_event

VERSION = r"^([0-9a-f]{40}|[0-9]{8}-[0-9]{6})$"


class HandlerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="dromedary-test-"))
        patcher = mock.patch.dict(os.environ, {"DROMEDARY_DATA_DIR": str(self.data_dir)})
        patcher.start()
        self.addCleanup(patcher.stop)

    def invoke(self, event: dict) -> tuple[int, dict, object]:
        answer = api.handler(event, None)
        self.assertFalse(answer["isBase64Encoded"])
        body = json.loads(answer["body"]) if answer["body"] else None
        return answer["statusCode"], answer["headers"], body

    def test_data_lists_the_chart_items(self) -> None:
        status, headers, body = self.invoke(proxy_event("/data"))
        self.assertEqual(status, 200)
        self.assertEqual([item["label"] for item in body], [c.label for c in COLOURS])
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Access-Control-Allow-Origin"], "*")

    def test_counts_only_maps_each_colour_to_its_count(self) -> None:
        status, _, body = self.invoke(proxy_event("/data", {"countsOnly": ""}))
        self.assertEqual(status, 200)
        self.assertEqual(body, {c.label: INITIAL_COUNT for c in COLOURS})

    def test_counts_only_false_gives_the_chart_items(self) -> None:
        _, _, body = self.invoke(proxy_event("/data", {"countsOnly": "false"}))
        self.assertIsInstance(body, list)

    def test_nocache_sees_a_write_made_by_another_container(self) -> None:
        self.invoke(proxy_event("/data", {"countsOnly": ""}))  # fills this container's copy
        document = {"counts": {"blue": 77}, "throttle": {}}
        (self.data_dir / "test.json").write_text(json.dumps(document), encoding="utf-8")
        _, _, body = self.invoke(proxy_event("/data", {"countsOnly": "", "nocache": ""}))
        self.assertEqual(body["blue"], 77)

    def test_config_json_names_the_version_and_an_empty_api_base(self) -> None:
        status, _, body = self.invoke(proxy_event("/config.json"))
        self.assertEqual(status, 200)
        self.assertEqual(body["apiBaseurl"], "")
        self.assertRegex(body["version"], VERSION)

    def test_config_json_version_can_be_set_by_the_environment(self) -> None:
        sha = "0123456789abcdef0123456789abcdef01234567"
        with mock.patch.dict(os.environ, {"DROMEDARY_VERSION": sha}):
            self.assertEqual(self.invoke(proxy_event("/config.json"))[2]["version"], sha)

    def test_unknown_path_is_a_404(self) -> None:
        status, headers, body = self.invoke(proxy_event("/nope"))
        self.assertEqual(status, 404)
        self.assertIn("error", body)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "*")

    def test_other_methods_are_a_405(self) -> None:
        status, headers, _ = self.invoke(proxy_event("/increment", method="POST"))
        self.assertEqual(status, 405)
        self.assertIn("GET", headers["Allow"])

    def test_trailing_slash_reaches_the_same_route(self) -> None:
        self.assertEqual(self.invoke(proxy_event("/data/"))[0], 200)

    def test_payload_2_events_are_understood(self) -> None:
        event = {
            "version": "2.0",
            "routeKey": "GET /increment",
            "rawPath": "/increment",
            "rawQueryString": "color=blue",
            "queryStringParameters": {"color": "blue"},
            "requestContext": {
                "http": {"method": "GET", "path": "/increment", "sourceIp": "192.0.2.4"}
            },
            "stageVariables": {"table": "v2"},
            "isBase64Encoded": False,
        }
        self.assertEqual(self.invoke(event)[2], {"count": INITIAL_COUNT + 1})
        self.assertTrue((self.data_dir / "v2.json").exists())

    def test_without_a_data_directory_the_error_is_a_500_naming_it(self) -> None:
        with mock.patch.dict(os.environ, {"DROMEDARY_DATA_DIR": ""}), self.assertLogs("dromedary"):
            status, _, body = self.invoke(proxy_event("/data"))
        self.assertEqual(status, 500)
        self.assertIn("DROMEDARY_DATA_DIR", body["error"])

    def test_a_bad_table_name_is_a_500_not_a_file_outside_the_data_directory(self) -> None:
        with self.assertLogs("dromedary"):
            event = proxy_event("/increment", {"color": "blue"}, table="../x")
            status, _, _ = self.invoke(event)
        self.assertEqual(status, 500)
        self.assertFalse((self.data_dir.parent / "x.json").exists())

    def test_an_unexpected_error_is_a_500_not_a_crash(self) -> None:
        boom = mock.patch.object(api, "chart_items", side_effect=RuntimeError("boom"))
        with boom, self.assertLogs("dromedary", "ERROR"):
            status, _, body = self.invoke(proxy_event("/data"))
        self.assertEqual((status, body), (500, {"error": "Internal error"}))


if __name__ == "__main__":
    unittest.main()
