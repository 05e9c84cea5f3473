"""The per-IP throttle: one vote per IP per window."""

import unittest

from dromedary.throttle import WINDOW_SECONDS, RequestThrottle


class ThrottleTest(unittest.TestCase):
    def test_log_adds_the_ip(self) -> None:
        throttle = RequestThrottle()
        throttle.log("10.0.0.1", 100.0)
        self.assertIn("10.0.0.1", throttle.entries)

    def test_an_ip_is_throttled_inside_its_window_and_free_after(self) -> None:
        throttle = RequestThrottle()
        throttle.log("10.0.0.1", 100.0)
        self.assertTrue(throttle.check("10.0.0.1", 100.0 + WINDOW_SECONDS / 2))
        self.assertFalse(throttle.check("10.0.0.1", 100.0 + WINDOW_SECONDS))

    def test_unknown_ips_are_not_throttled(self) -> None:
        throttle = RequestThrottle()
        throttle.log("10.0.0.1", 100.0)
        self.assertFalse(throttle.check("10.0.0.2", 100.0))

    def test_gc_removes_expired_entries_and_keeps_live_ones(self) -> None:
        throttle = RequestThrottle()
        throttle.log("10.0.0.1", 100.0)
        throttle.log("10.0.0.2", 100.5)
        throttle.gc(100.0 + WINDOW_SECONDS + 0.01)
        self.assertEqual(list(throttle.entries), ["10.0.0.2"])

    def test_entries_are_plain_data_shared_with_the_store(self) -> None:
        stored: dict[str, float] = {}
        RequestThrottle(stored).log("10.0.0.1", 5.0)
        self.assertEqual(stored, {"10.0.0.1": 5.0 + WINDOW_SECONDS})


if __name__ == "__main__":
    unittest.main()
