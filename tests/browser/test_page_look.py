"""How a finished answer looks: screenshots for a person, phone width, contrast, timings, copy."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import OUTPUT, ChatPage, new_chat_page
from tests.fakes.ollama import FakeOllama, Script, token_lines
from tests.helpers import Service

ANSWER = """Server-Sent Events keep **one HTTP response open** and write `event:`/`data:` lines as they happen.

Three things matter for a chat:

1. Nothing may buffer the stream: not the app, not the proxy.
2. Stop must close the upstream, so the model stops too.
3. Every stream ends with exactly one `done` or `error`.

```python
async for event in read_events(response):
    print(event.type, event.data)  # a long comment that makes this line wider than a phone screen is
```

```json
{"name": "llm-sse", "port": 8080, "debug": true}
```

```js
function greet(name) { return `Hello, ${name}`; }
```

| Language | Paradigm | First appeared |
|---|---|--:|
| Python | multi-paradigm | 1991 |
| Haskell | purely functional | 1990 |

See [the HTML standard](https://html.spec.whatwg.org/multipage/server-sent-events.html) for the parsing rules.
"""

CODE = (
    "async for event in read_events(response):\n"
    "    print(event.type, event.data)  # a long comment that makes this line wider than a phone screen is"
)


def pieces(text: str, size: int = 6) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def ask_for_the_sample(chat: ChatPage) -> None:
    chat.fake.push(Script(token_lines(pieces(ANSWER), thinking=["The user wants ", "the short version."])))
    await chat.ask("How do SSE chat streams work?")
    await chat.finished()


async def test_a_finished_answer_shows_its_timings_and_is_saved_as_a_screenshot(chat_page: ChatPage) -> None:
    await ask_for_the_sample(chat_page)
    answer = chat_page.answer()
    stats = answer.locator(".turn-stats")
    await expect(stats).to_have_text(re.compile(r"^First token after \d+ ms · \d+\.\d tokens/s · \d+ tokens$"))
    await expect(answer.locator(".answer ol > li")).to_have_count(3)
    await expect(answer.locator(".answer pre code").first).to_have_text(CODE)
    await expect(answer.locator(".answer pre code").first.locator(".hljs-keyword").first).to_have_text("async")
    await expect(answer.locator(".answer a")).to_have_attribute(
        "href", "https://html.spec.whatwg.org/multipage/server-sent-events.html"
    )
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "chat-finished-answer.png"
    path.unlink(missing_ok=True)
    await chat_page.page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000


async def test_the_copy_button_puts_the_code_on_the_clipboard(
    browser: Browser, service: Service, fake_ollama: FakeOllama
) -> None:
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service.url)
        await chat.open()
        await ask_for_the_sample(chat)
        copy = chat.answer().get_by_role("button", name="Copy python code")
        await copy.click()
        await expect(copy).to_have_text("Copied")
        assert await chat.page.evaluate("navigator.clipboard.readText()") == CODE
        await chat.check_clean()
    finally:
        await chat.page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_a_phone_width_screen_is_usable(
    browser: Browser, service: Service, fake_ollama: FakeOllama, scheme: str
) -> None:
    chat = await new_chat_page(
        browser, service, fake_ollama, viewport={"width": 360, "height": 740}, color_scheme=scheme, is_mobile=True
    )
    try:
        await chat.open()
        await ask_for_the_sample(chat)
        page = chat.page
        # No sideways scrolling of the page: the wide code line scrolls inside its block.
        widths = await page.evaluate(
            """() => ({page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth,
                      pre: document.querySelector("pre").scrollWidth > document.querySelector("pre").clientWidth})"""
        )
        assert widths["page"] <= widths["view"], widths
        assert widths["pre"], "the long code line should scroll inside its block"
        for control in (chat.prompt, chat.send_button, chat.model_picker):
            box = await control.bounding_box()
            assert box is not None
            assert box["x"] >= 0, box
            assert box["x"] + box["width"] <= 360, box
            assert box["y"] >= 0, box
            assert box["y"] + box["height"] <= 740, box
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / f"chat-phone-{scheme}.png"))
        await chat.check_clean()
    finally:
        await chat.page.context.close()


CONTRAST = """
() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const checks = {};
  for (const selector of [".answer p", ".answer li", ".answer a", ".answer pre code", ".code-lang", "button.copy",
                          ".user-text", ".turn-model", ".thinking summary", ".turn-stats", ".hints", "#send",
                          "#new-chat", "#model", "#prompt", ".turn-error-text", "h1", ".answer th", ".answer td",
                          ".hljs-keyword", ".hljs-string", ".hljs-comment", ".hljs-built_in", ".hljs-title",
                          ".hljs-number", ".hljs-attr", ".hljs-literal", ".action", ".error-actions .action",
                          ".chat-open", ".chat-tool", ".sidebar-title"]) {
    const el = document.querySelector(selector);
    if (!el) { checks[selector] = "missing"; continue; }
    const [a, b] = [luminance(rgb(getComputedStyle(el).color)), luminance(background(el))];
    checks[selector] = Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 100) / 100;
  }
  return checks;
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_text_contrast_is_adequate(
    browser: Browser, service: Service, fake_ollama: FakeOllama, scheme: str
) -> None:
    chat = await new_chat_page(browser, service, fake_ollama, color_scheme=scheme)
    try:
        await chat.open()
        await ask_for_the_sample(chat)
        # An error too, so its colour is measured.
        fake_ollama.push(Script(status=500, error="the model crashed"))
        await chat.ask("Again")
        await expect(chat.answer().locator(".turn-error")).to_be_visible()
        ratios = await chat.page.evaluate(CONTRAST)
        low = {selector: ratio for selector, ratio in ratios.items() if ratio == "missing" or ratio < 4.5}
        assert low == {}, f"below WCAG AA 4.5:1 in {scheme}: {low}"
        await chat.check_clean()
    finally:
        await chat.page.context.close()


SCREENSHOTS = OUTPUT / "page"
DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 860}},
    "phone": {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True},
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_screenshots_of_the_page_for_a_person_to_look_at(
    browser: Browser, service: Service, fake_ollama: FakeOllama, device: str, scheme: str
) -> None:
    """test-output/page/: empty, a conversation, and (on phones) the list of conversations."""
    chat = await new_chat_page(browser, service, fake_ollama, color_scheme=scheme, **DEVICES[device])
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await chat.open()
        await chat.page.screenshot(path=str(SCREENSHOTS / f"{device}-{scheme}-empty.png"))
        await ask_for_the_sample(chat)
        fake_ollama.push(Script(status=429, error="too many requests", headers={"Retry-After": "30"}))
        await chat.ask("And one more thing")
        await expect(chat.answer().locator(".turn-error")).to_be_visible()
        await chat.prompt.fill("A question being typed")
        await chat.page.screenshot(path=str(SCREENSHOTS / f"{device}-{scheme}-end.png"))
        await chat.page.locator("#conversation").evaluate("box => { box.scrollTop = 0; }")
        await chat.page.screenshot(path=str(SCREENSHOTS / f"{device}-{scheme}-top.png"))
        # Phones open the list over the conversation; wide screens close it.
        await chat.page.get_by_role("button", name="Conversations").click()
        await expect(chat.page.locator("#sidebar")).to_be_visible(visible=device == "phone")
        await chat.page.screenshot(path=str(SCREENSHOTS / f"{device}-{scheme}-sidebar.png"))
        for name in ("empty", "end", "top", "sidebar"):
            assert (SCREENSHOTS / f"{device}-{scheme}-{name}.png").stat().st_size > 5_000
        await chat.check_clean()
    finally:
        await chat.page.context.close()
