"""Open a report in Debian's headless Chromium (selenium, never selenium-manager) and read back,
from the page itself, which plots are there and drawn."""

from __future__ import annotations

from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

# Per section: its plots, whether each finished loading with real pixels, and its missing notes;
# plus every resource the page fetched (a self-contained file fetches none).
_PROBE = """
const out = {sections: {}, resources: performance.getEntriesByType('resource').map(e => e.name)};
for (const s of document.querySelectorAll('section[data-section]')) {
  out.sections[s.dataset.section] = {
    plots: [...s.querySelectorAll('img.plot')].map(i => ({drawn: i.complete && i.naturalWidth > 0,
                                                         width: i.naturalWidth, height: i.naturalHeight})),
    missing: [...s.querySelectorAll('.missing')].map(p => p.textContent)};
}
return out;
"""


def inspect(html_file: Path, screenshot: Path) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900", "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(html_file.resolve().as_uri())
        found = driver.execute_script(_PROBE)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1200, min(int(height) + 100, 8000))
        driver.save_screenshot(str(screenshot))
        return found
    finally:
        driver.quit()
