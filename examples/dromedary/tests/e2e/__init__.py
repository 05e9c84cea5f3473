"""End-to-end checks of a running dromedary (see e2e_site.py); not collected by plain
``python3 -m unittest`` because they need TARGET_URL."""
