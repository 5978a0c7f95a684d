"""Debian's Chromium driven through chromedriver (selenium), for tests of what a person sees.

selenium's webdriver is imported when a browser is started, not when the suite is collected: every pytest-xdist
worker collects every module, and the fast suite starts no browser."""

import os
import re

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Installed by .ci/run (npm install --prefix .cache/axe axe-core@<pinned>).
AXE = os.path.join(ROOT, ".cache", "axe", "node_modules", "axe-core", "axe.min.js")
# The sizes each page is checked at: (width, height, mobile emulation).
VIEWPORTS = {"phone": (390, 844, True), "desktop": (1280, 900, False)}
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless, and nothing that calls out: the test machine only reaches the service (and package registries).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def axe_source():
    """axe-core's script, for check_page; the test is skipped where it is not installed."""
    if not os.path.exists(AXE):
        pytest.skip(f"{AXE} missing: npm install --prefix .cache/axe axe-core (.ci/run does)")
    with open(AXE, encoding="utf-8") as handle:
        return handle.read()


def wait_until(driver, condition, timeout: float = 30, ignored_exceptions=None):
    """WebDriverWait(driver, timeout).until(condition): condition's first truthy value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=ignored_exceptions).until(condition)


# The WCAG 2.2 AA rules and best practices axe-core checks every page against.
AXE_RUN = (
    "const done = arguments[arguments.length - 1];"
    "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
    " 'wcag22aa', 'best-practice']}}).then(r => done(r.violations.map(v => [v.id, v.help,"
    " v.nodes.map(n => n.target.join(' '))])), e => done([['axe failed', String(e), []]]));"
)


def check_page(driver, base_url: str, name: str, viewport: str, axe_source: str, shot_prefix: str = "") -> None:
    """What a person and a screen reader need of the page shown: nothing loaded from outside base_url, no sideways
    scrolling at this viewport, no axe-core violation; a screenshot into SCREENSHOTS_DIR when that is set."""
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(url.startswith(base_url + "/") for url in loaded), loaded  # nothing from outside
    width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name}: scrolls sideways at {viewport} size: {width}"
    driver.execute_script(axe_source)
    found = driver.execute_async_script(AXE_RUN)
    assert found == [], f"{name} at {viewport} size: {found}"
    shots = os.environ.get("SCREENSHOTS_DIR")
    if shots:
        slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
        driver.save_screenshot(os.path.join(shots, f"{shot_prefix}{slug}-{viewport}.png"))
