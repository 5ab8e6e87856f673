"""Shared steps for the headless-Chromium tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.processes import wait_until

DEMO_PASSWORD = "pds-demo-2026"

# Debian's headless Chromium, quiet (no background network, no updates, no sync), in its own profile.
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium(profile: Path, *args: str, console_log: bool = False, options: Any = None) -> Any:
    """A Selenium driver for Debian's chromium and chromedriver: ``CHROMIUM_ARGS``, the profile folder, then
    ``args`` (window size, language...); ``console_log`` keeps the page's console for ``get_log("browser")``;
    ``options(opts)`` adds what else a test needs (a phone's viewport)."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}", *args):
        opts.add_argument(arg)
    if console_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if options is not None:
        options(opts)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def browser_login(driver: Any, base: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the real login page (the demo settings skip the second factor)."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit].primary").click()
    wait_until(lambda: "/accounts/login/" not in driver.current_url, timeout=30, message=f"{username} logged in")


# axe-core 4.10.3 (MPL-2.0, Deque Systems), vendored from the npm package with its licence header: no CDN.
AXE_SOURCE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_BLOCKING = ("serious", "critical")


def axe_violations(driver: Any, impacts: tuple[str, ...] = AXE_BLOCKING) -> list[dict[str, Any]]:
    """Run axe-core on the current page and return its violations of these impacts (serious and critical).

    The script is evaluated by the driver (DevTools), so the page's Content-Security-Policy does not block it;
    the returned promise is awaited by WebDriver."""
    run = """
var blocking = arguments[0];
return axe.run(document, {resultTypes: ['violations']}).then(function (r) {
  return r.violations.filter(function (v) { return blocking.indexOf(v.impact) >= 0; })
    .map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map(function (n) { return {target: n.target.join(' '), summary: n.failureSummary}; })};
    });
});"""
    source = AXE_SOURCE.read_text(encoding="utf-8")
    result: list[dict[str, Any]] = driver.execute_script(source + run, list(impacts))
    return result


def describe_violations(page: str, violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{page}: {v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {n['summary']}" for n in v["nodes"][:8])
    return "\n".join(lines)
