"""The colour model: the chart's items and the counts behind them."""

import unittest

from dromedary.colours import COLOURS, INITIAL_COUNT, all_counts, chart_items, colour_exists


class ChartItemsTest(unittest.TestCase):
    def test_one_item_per_colour_with_exactly_the_four_chart_keys(self) -> None:
        items = chart_items({})
        self.assertEqual(len(items), len(COLOURS))
        for item in items:
            self.assertEqual(set(item), {"label", "value", "color", "highlight"})

    def test_counts_are_numbers_starting_at_the_initial_count(self) -> None:
        for item in chart_items({}):
            self.assertIsInstance(item["value"], int)
            self.assertEqual(item["value"], INITIAL_COUNT)

    def test_stored_counts_show_and_removed_colours_do_not(self) -> None:
        first = COLOURS[0].label
        counts = all_counts({first: 42, "magenta": 7})
        self.assertEqual(counts[first], 42)
        self.assertNotIn("magenta", counts)
        self.assertEqual(list(counts), [c.label for c in COLOURS])


class ColourExistsTest(unittest.TestCase):
    def test_known_colours_exist(self) -> None:
        for colour in COLOURS:
            self.assertTrue(colour_exists(colour.label))

    def test_empty_unknown_and_missing_names_do_not(self) -> None:
        for name in ("", "UKNOWN", None, 3, COLOURS[0].label.upper()):
            self.assertFalse(colour_exists(name), name)


if __name__ == "__main__":
    unittest.main()
