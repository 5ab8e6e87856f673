"""Shared steps for the headless-Chromium tests."""

from __future__ import annotations

from typing import Any

from tests.support.processes import wait_until

DEMO_PASSWORD = "pds-demo-2026"


def browser_login(driver: Any, base: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the real login page (the demo settings skip the second factor)."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit].primary").click()
    wait_until(lambda: "/accounts/login/" not in driver.current_url, timeout=30, message=f"{username} logged in")
