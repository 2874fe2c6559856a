"""The web console in a real browser: Debian's Chromium driven by Playwright's sync API (see conftest.py)."""
