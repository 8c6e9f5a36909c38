"""The login flow in a real headless Chromium (Debian's package), driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from deploy.loopback import LocalSuite

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: run `make test`, which installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def log_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/persons")
    expect(page).to_have_url(f"{url}/login")
    page.fill("input[name=emailaddress]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_admin_logs_in_edits_and_logs_out(sqlite_suite: LocalSuite, page: Page) -> None:
    url = sqlite_suite.url
    console: list[str] = []  # Chromium reports here what the gateway's Content-Security-Policy blocked
    page.on("console", lambda message: console.append(message.text))
    log_in(page, url, "admin@test.com", "wrong")
    expect(page.get_by_role("alert")).to_have_text("Wrong email address or password.")
    page.fill("input[name=emailaddress]", "admin@test.com")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{url}/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "AccessToken")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    device = next(c for c in page.context.cookies() if c["name"] == "LoginDevice")  # this browser is trusted now
    assert device["httpOnly"] and device["sameSite"] == "Strict"
    # who is logged in, from the session service's user context (the address and the role)
    expect(page.locator("main")).to_contain_text("You are logged in as admin@test.com (admin).")

    page.click("text=People")
    expect(page.locator("table")).to_contain_text("Lovelace")
    page.click("text=Add a person")
    page.fill("input[name=firstName]", "Dorothy")
    page.fill("input[name=lastName]", "Vaughan")
    page.click("main button[type=submit]")  # the browser's own Origin header passes the gateway's check
    expect(page.locator("h1")).to_have_text("Dorothy Vaughan")
    page.click("text=Edit")
    page.fill("input[name=lastName]", "Johnson Vaughan")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dorothy Johnson Vaughan")

    # The stylesheet applies under the policy; the Log out button looks like the People link.
    expect(page.locator("header")).to_have_css("background-color", "rgb(255, 255, 255)")
    link_color = page.locator("header nav a").evaluate("link => getComputedStyle(link).color")
    expect(page.locator("header nav button")).to_have_css("color", link_color)
    expect(page.locator("header nav button")).to_have_css("background-color", "rgba(0, 0, 0, 0)")
    page.click("text=Log out")  # a POST with the browser's Origin
    expect(page).to_have_url(f"{url}/login")
    page.goto(f"{url}/persons")
    expect(page).to_have_url(f"{url}/login")
    assert not [line for line in console if "Content Security Policy" in line], console


def test_the_view_only_user_is_offered_no_add_edit_or_delete(sqlite_suite: LocalSuite, page: Page) -> None:
    url = sqlite_suite.url
    log_in(page, url, "user@test.com", "user")
    expect(page).to_have_url(f"{url}/")
    expect(page.locator("main")).to_contain_text("You are logged in as user@test.com (user).")
    page.click("text=People")
    expect(page.locator("table")).to_contain_text("Lovelace")
    expect(page.get_by_text("Add a person")).to_have_count(0)
    page.click("table a >> nth=0")  # a person's page: nothing to change there for this user
    expect(page.locator("dl")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    # typed in by hand, the forms are refused before they are filled in (the services refuse the rest anyway)
    for path in ("/persons/add", "/persons/1/edit"):
        page.goto(f"{url}{path}")
        expect(page.get_by_role("alert")).to_have_text("You do not have permission to do that.")
        expect(page.locator("input[name=firstName]")).to_have_count(0)
