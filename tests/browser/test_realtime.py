"""The landing page in headless Chromium through the ingress: the live count follows
pages opening and closing, and the echo box echoes."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Page, expect


def connections(agora_url: str) -> int:
    return httpx.get(f"{agora_url}/api/v1/realtime/online", timeout=10).json()["connections"]


def test_two_pages_count_each_other(agora_url: str, context: BrowserContext, page: Page):
    base = connections(agora_url)
    page.goto(f"{agora_url}/")
    expect(page.locator("#counter-state")).to_have_text("open")
    other = context.new_page()
    other.goto(f"{agora_url}/")
    expect(page.locator("#count")).to_have_text(str(base + 2))
    expect(other.locator("#count")).to_have_text(str(base + 2))
    expect(page.locator("#details")).to_have_text("on 2 replicas")
    other.close()
    expect(page.locator("#count")).to_have_text(str(base + 1))


def test_the_echo_box_echoes(agora_url: str, page: Page):
    page.goto(f"{agora_url}/")
    expect(page.locator("#echo-send")).to_be_enabled()
    page.fill("#echo-input", "hello from Chromium <b>not bold</b>")
    page.click("#echo-send")
    expect(page.locator("#echo-log li").first).to_have_text("hello from Chromium <b>not bold</b>")
    expect(page.locator("#echo-input")).to_have_value("")
    page.press("#echo-input", "Enter")  # empty: nothing is sent
    page.fill("#echo-input", "second")
    page.press("#echo-input", "Enter")
    expect(page.locator("#echo-log li")).to_have_count(2)
    expect(page.locator("#echo-log li").first).to_have_text("second")
