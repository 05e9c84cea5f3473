"""Votes: /increment adds one, persists it atomically per table, and throttles per IP."""

import json
import os
import tempfile
import threading
import unittest
from pathlib import Path
from unittest import mock

from dromedary import api
from dromedary.colours import INITIAL_COUNT
from dromedary.store import CountStore, StoreError

from .events import proxy_event

COLOUR = "green"


def call(path: str, query: dict[str, str] | None = None, **kwargs: object) -> tuple[int, object]:
    answer = api.handler(proxy_event(path, query, **kwargs), None)
    return answer["statusCode"], json.loads(answer["body"])


class IncrementTest(unittest.TestCase):
    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="dromedary-test-"))
        patcher = mock.patch.dict(os.environ, {"DROMEDARY_DATA_DIR": str(self.data_dir)})
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_increment_adds_one_and_persists_it(self) -> None:
        self.assertEqual(call("/increment", {"color": COLOUR}), (200, {"count": INITIAL_COUNT + 1}))
        stored = json.loads((self.data_dir / "test.json").read_text())
        self.assertEqual(stored["counts"][COLOUR], INITIAL_COUNT + 1)

    def test_unknown_colour_is_a_400_and_changes_nothing(self) -> None:
        self.assertEqual(call("/increment", {"color": "UKNOWN"}), (400, {"error": "Unknown color"}))
        self.assertFalse((self.data_dir / "test.json").exists())

    def test_missing_colour_counts_zero(self) -> None:
        self.assertEqual(call("/increment"), (200, {"count": 0}))

    def test_a_second_vote_within_the_window_is_throttled(self) -> None:
        call("/increment", {"color": COLOUR})
        self.assertEqual(
            call("/increment", {"color": COLOUR}), (429, {"error": "Request throttled"})
        )
        self.assertEqual(call("/increment", {"color": COLOUR}, source_ip="192.0.2.99")[0], 200)
        self.assertEqual(
            call("/data", {"countsOnly": "", "nocache": ""})[1][COLOUR], INITIAL_COUNT + 2
        )

    def test_each_table_keeps_its_own_counts(self) -> None:
        call("/increment", {"color": COLOUR}, table="test")
        _, prod = call("/data", {"countsOnly": "", "nocache": ""}, table="prod")
        self.assertEqual(prod[COLOUR], INITIAL_COUNT)
        self.assertEqual(sorted(p.name for p in self.data_dir.glob("*.json")), ["test.json"])

    def test_concurrent_votes_are_all_counted(self) -> None:
        ips = [f"198.51.100.{n}" for n in range(20)]
        vote = {"color": COLOUR}
        threads = [
            threading.Thread(target=call, args=("/increment", vote), kwargs={"source_ip": ip})
            for ip in ips
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = CountStore(self.data_dir, "test").read()["counts"]
        self.assertEqual(counts[COLOUR], INITIAL_COUNT + len(ips))
        self.assertEqual([p.name for p in self.data_dir.iterdir() if p.suffix == ".tmp"], [])


class CountStoreTest(unittest.TestCase):
    def test_table_names_cannot_leave_the_data_directory(self) -> None:
        for table in ("../x", "a/b", ".hidden", ""):
            with self.assertRaises(StoreError):
                CountStore(Path(tempfile.gettempdir()), table)

    def test_a_failed_update_writes_nothing(self) -> None:
        store = CountStore(Path(tempfile.mkdtemp()), "t")
        with self.assertRaises(RuntimeError), store.update() as document:
            document["counts"]["green"] = 99
            raise RuntimeError("boom")
        self.assertEqual(store.read()["counts"], {})


if __name__ == "__main__":
    unittest.main()
