import unittest

from greeting import greet


class GreetingTest(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        self.assertEqual(greet("caravan"), "Hello, caravan!")


if __name__ == "__main__":
    unittest.main()
