"""Real Chromium (Debian's /usr/bin/chromium) driving the chat page of a real service.

The service runs against the fake Ollama on loopback, in the test's event loop;
Playwright's async API shares that loop, so a test can hold the upstream on a
``Gate``, look at the DOM, then let it go on.

Every page is watched: an uncaught error or unhandled rejection, a Content
Security Policy violation or a dialog (``alert``) fails the test that caused it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Error, Locator, Page, async_playwright, expect

from tests.fakes.ollama import FakeOllama
from tests.helpers import Service
from tests.realparts import missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

# The machine is small and shared: be generous with waits for the DOM.
expect.set_options(timeout=15_000)

WATCH_PAGE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}: ${event.sample}`);
});
"""


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; CI installs it (`make system-deps`), so there it must exist."""
    if not CHROMIUM.exists():
        missing(str(CHROMIUM), "`make system-deps` installs Debian's chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ChatPage:
    """The chat page open in a browser tab, and what it needs to be driven."""

    page: Page
    service: Service
    fake: FakeOllama
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def prompt(self) -> Locator:
        return self.page.get_by_label("Message", exact=True)

    @property
    def send_button(self) -> Locator:
        return self.page.get_by_role("button", name="Send", exact=True)

    @property
    def stop_button(self) -> Locator:
        return self.page.get_by_role("button", name="Stop", exact=True)

    @property
    def model_picker(self) -> Locator:
        return self.page.get_by_label("Model", exact=True)

    def answer(self, index: int = -1) -> Locator:
        """An assistant turn (the last by default)."""
        return self.page.locator(".turn-assistant").nth(index)

    def answer_text(self, index: int = -1) -> Locator:
        return self.answer(index).locator(".answer")

    async def open(self) -> None:
        await self.page.goto(f"{self.service.url}/")
        # The model list has arrived: the picker shows the upstream's default.
        await expect(self.model_picker).to_have_value(self.fake.models[0])

    async def ask(self, text: str) -> None:
        await self.prompt.fill(text)
        await self.prompt.press("Enter")

    async def finished(self, index: int = -1) -> Locator:
        """Wait until an answer is done (its timings are shown) and return it."""
        answer = self.answer(index)
        await expect(answer.locator(".turn-stats")).to_be_visible()
        return answer

    async def check_clean(self) -> None:
        assert self.page_errors == [], f"errors in the page: {self.page_errors}"
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"
        if not self.page.is_closed():
            try:
                violations: list[str] = await self.page.evaluate("window.__cspViolations ?? []")
            except Error:
                violations = []  # the page is navigating or gone
            assert violations == [], f"Content Security Policy violations: {violations}"


async def new_chat_page(browser: Browser, service: Service, fake: FakeOllama, **context: Any) -> ChatPage:
    ctx = await browser.new_context(**{"viewport": {"width": 1100, "height": 850}, **context})
    await ctx.add_init_script(WATCH_PAGE)
    page = await ctx.new_page()
    chat = ChatPage(page, service, fake)
    page.on("pageerror", lambda error: chat.page_errors.append(str(error)))

    async def on_dialog(dialog: Dialog) -> None:
        chat.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return chat


@pytest.fixture
async def chat_page(browser: Browser, service: Service, fake_ollama: FakeOllama) -> AsyncIterator[ChatPage]:
    """The chat page, loaded, against the service and its fake Ollama."""
    chat = await new_chat_page(browser, service, fake_ollama)
    await chat.open()
    yield chat
    await chat.check_clean()
    await chat.page.context.close()
