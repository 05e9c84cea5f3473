"""``TARGET_URL=<site URL> [E2E_MODE=smoke] python3 -m tests.e2e`` from the sample's root.

Exit status: 0 when every check passes, 1 when one fails, 2 without TARGET_URL.
"""

import os
import sys
import unittest


def main() -> int:
    if not os.environ.get("TARGET_URL"):
        print("TARGET_URL is required: the URL of the site to check", file=sys.stderr)
        return 2
    mode = "smoke (read-only)" if os.environ.get("E2E_MODE") == "smoke" else "full"
    print(f"end-to-end checks of {os.environ['TARGET_URL']} in {mode} mode", file=sys.stderr)
    suite = unittest.defaultTestLoader.loadTestsFromName("tests.e2e.e2e_site")
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
