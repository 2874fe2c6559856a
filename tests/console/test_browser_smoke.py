"""The browser-test setup itself, without the console: a real hub, Debian's Chromium, screenshots both ways."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from ..hubproc import HubProcess

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_real_hub_in_a_real_browser(
    page: Page, screenshot: Callable[[Page, str], tuple[Path, Path]], sqlite_hub: HubProcess
) -> None:
    # (``page`` first: without a browser the test skips before a hub starts.)
    response = page.goto(sqlite_hub.url + "/health")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(page.locator("pre").first.inner_text()) == {"status": "ok"}
    assert '"status":"ok"' in page.locator("body").inner_text().replace(" ", "")
    assert "Chrome" in page.evaluate("navigator.userAgent")  # Chromium, not some stub

    for path in screenshot(page, "smoke-health"):
        assert path.read_bytes().startswith(PNG), path


def test_screenshots_are_taken_light_then_dark(page: Page, screenshot: Callable[[Page, str], tuple[Path, Path]]) -> None:
    page.set_content(
        "<style>body{background:#fff;color:#000} @media (prefers-color-scheme: dark){body{background:#000;color:#fff}}"
        "</style><p>light and dark</p>"
    )
    background = "getComputedStyle(document.body).backgroundColor"
    light, dark = screenshot(page, "smoke-scheme")
    assert light.name == "smoke-scheme-light.png" and dark.name == "smoke-scheme-dark.png"
    assert light.read_bytes().startswith(PNG) and dark.read_bytes().startswith(PNG)
    assert light.read_bytes() != dark.read_bytes()
    assert page.evaluate(background) == "rgb(255, 255, 255)"  # left as it was

    page.emulate_media(color_scheme="dark")
    screenshot(page, "smoke-scheme")
    assert page.evaluate(background) == "rgb(0, 0, 0)"


def test_the_vendored_scripts_run_in_chromium(page: Page, screenshot: Callable[[Page, str], tuple[Path, Path]]) -> None:
    vendor = Path(__file__).resolve().parents[2] / "agora" / "transports" / "console" / "static" / "vendor"
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    page.set_content('<!doctype html><html><body><div id="chart"></div></body></html>')
    for script in ("htmx.min.js", "sse.js", "uPlot.iife.min.js"):
        page.add_script_tag(path=vendor / script)
    page.add_style_tag(path=vendor / "uPlot.min.css")

    assert page.evaluate("htmx.version") == "2.0.11"
    # htmx 2 calls an extension's init when it is defined; the SSE extension's sets htmx.createEventSource.
    assert page.evaluate("typeof htmx.createEventSource") == "function"
    page.evaluate(
        """() => new uPlot({width: 320, height: 160, series: [{}, {stroke: "steelblue"}]},
                           [[1, 2, 3, 4], [3, 1, 4, 1]], document.getElementById("chart"))"""
    )
    assert page.locator("#chart .uplot canvas").count() == 1
    assert messages == []  # htmx.org's own dist/ext/sse.js (the htmx 1 extension) would warn here
    screenshot(page, "smoke-vendor")
