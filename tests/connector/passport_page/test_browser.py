"""The passport page as a person sees it: headless Chromium (Debian's ``chromium``, driven by
Playwright, no browser download) opens a node's page on a desktop and a phone, reads what is
visible, scans the QR code (decoded from the PNG the page shows) and follows it, and saves
screenshots in the test's tmp dir.

Without Chromium or Playwright the test is skipped with the reason, and fails under
``BPC_REQUIRE_SERVICES=1`` (CI installs ``chromium``).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zxingcpp
from PIL import Image

from connector.passport_page.identifiers import page_path
from connector.serve import RunningNode, running_node
from tests.connector.passport_page.rich_passport import (
    DISMANTLING_STEP,
    RESTRICTED_MARKER,
    RichPassport,
    build_rich_passport,
)
from tests.connector.test_node import node_config, passphrase  # noqa: F401

CHROMIUM = os.environ.get("BPC_CHROMIUM", "/usr/bin/chromium")
#: Where the screenshots are copied as well, when set (to look at them after a CI run).
SCREENSHOT_DIR_ENV = "BPC_SCREENSHOT_DIR"

pytestmark = pytest.mark.slow


def _require_browser() -> Any:
    """Playwright's async API, or skip (fail under BPC_REQUIRE_SERVICES=1) saying what is
    missing."""
    problem = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    if problem is None and not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if problem is None:
        return async_playwright
    if os.environ.get("BPC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem}, and BPC_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(f"{problem}; set BPC_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with running_node(node_config(tmp_path / "node")) as running:
        yield running


def _keep(path: Path) -> None:
    target = os.environ.get(SCREENSHOT_DIR_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


async def _check_page(page: Any, rich: RichPassport) -> None:
    """What a person sees on the page, and what is not in its source."""
    visible = await page.locator("body").inner_text()  # rendered text only
    for text in (rich.battery_identifier, "Public data", "Rated capacity",
                 "Carbon footprint and recycled content", "State of health",
                 "Cell temperature above the safe limit", "Chain of custody",
                 "State-of-health reading", "Waste (for recycling)",
                 "Available to certified recyclers under contract"):
        assert text in visible, text
    chart = page.locator("svg.soh-chart")
    assert await chart.is_visible()
    assert await chart.locator("circle").count() == len(rich.soh)
    assert await page.get_by_role("link", name="Request access").count() == 4
    qr = page.locator(".qr img")
    assert await qr.is_visible()
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    source = await page.content()
    for value in (RESTRICTED_MARKER, DISMANTLING_STEP, rich.vin, "LiNi0.8Mn0.1Co0.1O2"):
        assert value not in source, value
    assert "<script" not in source.lower()


async def test_a_person_opens_scans_and_follows_the_passport_page(
        node: RunningNode, tmp_path: Path) -> None:
    async_playwright = _require_browser()
    async with aiohttp.ClientSession() as session:
        rich = await build_rich_passport(node.app, session, node.url)
    url = node.url + page_path(rich.battery)
    console: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            desktop = await browser.new_page(viewport={"width": 1280, "height": 900})
            desktop.on("console", lambda message: console.append(message.text))
            response = await desktop.goto(url)
            assert response is not None and response.status == 200
            await _check_page(desktop, rich)
            # the inline stylesheet is allowed by its hash: the page is styled, nothing blocked
            background = await desktop.evaluate(
                "getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(246, 248, 250)"
            assert not [m for m in console if "Content Security Policy" in m], console
            shot = tmp_path / "passport-desktop.png"
            await desktop.screenshot(path=str(shot), full_page=True)
            _keep(shot)

            # scan: the PNG the page links, decoded as a phone's camera app would
            png = await (await desktop.request.get(url + "/qr.png")).body()
            scanned = [r.text for r in zxingcpp.read_barcodes(
                Image.open(io.BytesIO(png)).convert("L"))]
            assert scanned == [url]

            phone = await browser.new_context(viewport={"width": 390, "height": 844},
                                              device_scale_factor=2, is_mobile=True,
                                              has_touch=True)
            mobile = await phone.new_page()
            response = await mobile.goto(scanned[0])
            assert response is not None and response.status == 200
            await _check_page(mobile, rich)
            fits = await mobile.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert fits, "the page scrolls sideways on a phone"
            shot = tmp_path / "passport-phone.png"
            await mobile.screenshot(path=str(shot), full_page=True)
            _keep(shot)

            await mobile.get_by_role("link", name="Request access").first.click()
            assert "/access/dismantling-safety" in mobile.url
            assert await mobile.get_by_text("bpc negotiate").is_visible()
            assert RESTRICTED_MARKER not in await mobile.content()

            missing = await mobile.goto(node.url + "/passport/did:key:z6MkNoSuchBattery0000")
            assert missing is not None and missing.status == 404
            assert await mobile.get_by_text("No such battery passport").first.is_visible()
        finally:
            await browser.close()
    assert (tmp_path / "passport-desktop.png").stat().st_size > 10_000
