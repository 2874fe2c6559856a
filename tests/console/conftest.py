"""Browser tests: pytest-playwright's ``page`` in Debian's Chromium, launched by its path.

Playwright's own browser download is not used (``playwright install`` is never run): the browser is the Debian
package ``chromium`` (``.ci/run`` installs it). Without it the tests skip, or fail under CI / AGORA_REQUIRE_SERVICES=1.

Browser tests here are **sync** tests, and must not use async fixtures. Playwright's sync API runs its own asyncio
loop in greenlets and, between two sync calls, leaves that loop marked as the thread's running loop; pytest-asyncio
then cannot run a coroutine in that thread ("Runner.run() cannot be called from a running event loop"). So this
package's Playwright (and its browser) is package-scoped instead of session-scoped, as pytest-playwright has it: it
stops when the worker moves on to a test outside tests/console, and the async tests elsewhere run as before (under
``-n 2`` a worker may open it more than once; a launch takes about a second). An async test in this package fails
at once with that explanation (write it elsewhere, e.g. tests/test_console_http.py).

``screenshot(page, name)`` saves ``<name>-light.png`` and ``<name>-dark.png`` (full page) in the git-ignored
``tests/console/screenshots/``, to look at after a run.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
REQUIRE_BROWSER = bool(os.environ.get("CI")) or os.environ.get("AGORA_REQUIRE_SERVICES") == "1"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """(Called for the tests of this package only.)"""
    if inspect.iscoroutinefunction(getattr(item, "obj", None)):
        pytest.fail(
            f"{item.nodeid} is async: tests in tests/console are sync. Playwright's sync API leaves its own event loop "
            "marked as running in this thread while the package's browser is open, so pytest-asyncio cannot run a "
            "coroutine here; put async tests outside tests/console.",
            pytrace=False,
        )


# -- pytest-playwright's fixtures, adapted ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Debian's Chromium by path, headless (``--headed`` to watch; ``--slowmo MS`` to slow it down)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"Debian's chromium is not installed: apt-get install chromium (no {CHROMIUM})"
        if REQUIRE_BROWSER:
            pytest.fail(f"CI or AGORA_REQUIRE_SERVICES=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    args: dict[str, Any] = {
        "executable_path": str(CHROMIUM),
        "headless": not pytestconfig.getoption("--headed"),
        # Chromium's sandbox cannot start as root ("Running as root without --no-sandbox is not supported"), and
        # usually not in a container either. Playwright passes --no-sandbox unless chromium_sandbox=True; say both,
        # so that a change of Playwright's default does not turn into "Chromium sandboxing failed!" here.
        "chromium_sandbox": False,
        "args": ["--no-sandbox"] if os.geteuid() == 0 else [],
    }
    if pytestconfig.getoption("--slowmo"):
        args["slow_mo"] = pytestconfig.getoption("--slowmo")
    if hasattr(request, "param"):  # @pytest.mark.parametrize("browser_type_launch_args", [{...}], indirect=True)
        args.update(request.param)
    return args


@pytest.fixture(scope="package")
def playwright(_pw_api_request_contexts: Any) -> Generator[Playwright, None, None]:
    """Package-scoped (see the module's docstring), else as pytest-playwright's."""
    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()
    if asyncio._get_running_loop() is not None:  # what pytest-asyncio needs for the tests that follow
        raise RuntimeError("Playwright stopped but left an event loop marked as running in this thread")


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType, connect_options: dict[str, Any] | None
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        options = {**browser_type_launch_args, **kwargs}
        if connect_options:
            headers = {"x-playwright-launch-options": json.dumps(options), **(connect_options.get("headers") or {})}
            return browser_type.connect(**{**connect_options, "headers": headers})
        return browser_type.launch(**options)

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Generator[Browser, None, None]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args(
    pytestconfig: pytest.Config,
    playwright: Playwright,
    device: str | None,
    base_url: str | None,
    _pw_artifacts_folder: Any,
) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if device:
        args.update(playwright.devices[device])
    if base_url:
        args["base_url"] = base_url
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config) -> str | None:
    """pytest-playwright's is a method of a plugin object, which pytest 9 warns about; this one is not."""
    return pytestconfig.getoption("--base-url")


# -- helpers ------------------------------------------------------------------------------------------------------


@pytest.fixture
def screenshot() -> Callable[[Page, str], tuple[Path, Path]]:
    """``screenshot(page, name)``: full-page ``<name>-light.png`` and ``<name>-dark.png`` in tests/console/screenshots/
    (``prefers-color-scheme`` emulated each way; the page is left in the scheme it had). Returns the two paths."""

    def take(page: Page, name: str) -> tuple[Path, Path]:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(f"a screenshot name is a plain file name: {name!r}")
        SCREENSHOTS.mkdir(exist_ok=True)
        was_dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        paths = []
        try:
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                path = SCREENSHOTS / f"{name}-{scheme}.png"
                page.screenshot(path=path, full_page=True, animations="disabled")
                paths.append(path)
        finally:
            page.emulate_media(color_scheme="dark" if was_dark else "light")
        return paths[0], paths[1]

    return take
