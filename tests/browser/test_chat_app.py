"""The chat page as a chat app, in real Chromium: actions on messages, kept conversations,
scrolling, the streaming indicator, focus, long input, errors with a way forward, tool calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, Locator, Route, expect

from tests.browser.conftest import ChatPage, new_chat_page
from tests.fakes.ollama import MODEL, FakeOllama, Gate, Hang, Line, Script, done_line, token_lines
from tests.helpers import Service

DISCONNECT_WAIT = 10.0
MakeService = Callable[..., Awaitable[Service]]


def chat_line(text: str) -> Line:
    return Line(
        {"model": MODEL, "created_at": "2025-08-02T22:05:23Z", "message": {"role": "assistant", "content": text}}
    )


def user_turns(chat: ChatPage) -> Locator:
    return chat.page.locator(".turn-user")


# -- actions on messages


async def test_copy_puts_the_whole_answer_on_the_clipboard_as_markdown(
    browser: Browser, service: Service, fake_ollama: FakeOllama
) -> None:
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service.url)
        await chat.open()
        answer = "## Steps\n\n1. **Open** the `door`\n2. Walk in\n\n```sh\nls -la\n```\n"
        fake_ollama.push(Script(token_lines([answer[i : i + 7] for i in range(0, len(answer), 7)])))
        await chat.ask("How do I get in?")
        turn = await chat.finished()
        await turn.get_by_role("button", name="Copy the answer as Markdown").click()
        await expect(turn.get_by_role("button", name="Copy the answer as Markdown")).to_have_text("Copied")
        assert await chat.page.evaluate("navigator.clipboard.readText()") == answer
        await chat.check_clean()
    finally:
        await chat.page.context.close()


async def test_regenerate_asks_the_same_question_again_and_replaces_the_answer(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script(token_lines(["First ", "try."])))
    await chat_page.ask("Name a colour")
    await chat_page.finished()
    chat_page.fake.push(Script(token_lines(["Second ", "try."])))
    await chat_page.answer().get_by_role("button", name="Regenerate the answer").click()
    await expect(chat_page.answer_text()).to_have_text("Second try.")
    await chat_page.finished()
    await expect(user_turns(chat_page)).to_have_count(1)
    await expect(chat_page.page.locator(".turn-assistant")).to_have_count(1)
    assert chat_page.fake.requests[-1].body["messages"] == [{"role": "user", "content": "Name a colour"}]
    await expect(chat_page.prompt).to_be_focused()


async def test_only_the_last_answer_offers_regenerate(chat_page: ChatPage) -> None:
    await chat_page.ask("One")
    await chat_page.finished()
    await chat_page.ask("Two")
    await chat_page.finished(1)
    await expect(chat_page.answer(0).get_by_role("button", name="Regenerate the answer")).to_be_hidden()
    await expect(chat_page.answer(1).get_by_role("button", name="Regenerate the answer")).to_be_visible()


async def test_continue_goes_on_from_an_answer_cut_at_the_length_limit(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script(token_lines(["The list: ", "one, two,"], done_reason="length")))
    await chat_page.ask("Count to five")
    turn = await chat_page.finished()
    await expect(turn.locator(".turn-stats")).to_contain_text("The answer reached its length limit.")
    chat_page.fake.push(Script(token_lines([" three, four, five."])))
    await turn.get_by_role("button", name="Continue the answer where it stopped").click()
    await expect(chat_page.answer_text()).to_have_text("The list: one, two, three, four, five.")
    await chat_page.finished()
    await expect(chat_page.page.locator(".turn-assistant")).to_have_count(1)
    # The unfinished answer is sent last, for the model to go on from.
    assert chat_page.fake.requests[-1].body["messages"] == [
        {"role": "user", "content": "Count to five"},
        {"role": "assistant", "content": "The list: one, two,"},
    ]
    await expect(turn.get_by_role("button", name="Continue the answer where it stopped")).to_be_hidden()
    # The whole answer is what the next question sends.
    await chat_page.ask("Thanks")
    await chat_page.finished(1)
    assert chat_page.fake.requests[-1].body["messages"][1] == {
        "role": "assistant",
        "content": "The list: one, two, three, four, five.",
    }


async def test_edit_resends_and_the_conversation_goes_on_from_there(chat_page: ChatPage) -> None:
    await chat_page.ask("First question")
    await chat_page.finished()
    await chat_page.ask("Second question")
    await chat_page.finished(1)
    first = user_turns(chat_page).first
    await first.hover()
    await first.get_by_role("button", name="Edit your message and send it again").click()
    editor = first.get_by_label("Edit your message", exact=True)
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("First question")
    await editor.fill("A better first question")
    chat_page.fake.push(Script(token_lines(["Better."])))
    await editor.press("Enter")
    await chat_page.finished()
    await expect(user_turns(chat_page)).to_have_count(1)
    await expect(chat_page.page.locator(".user-text")).to_have_text(["A better first question"])
    await expect(chat_page.answer_text()).to_have_text("Better.")
    assert chat_page.fake.requests[-1].body["messages"] == [{"role": "user", "content": "A better first question"}]


async def test_escape_cancels_an_edit(chat_page: ChatPage) -> None:
    await chat_page.ask("Keep me")
    await chat_page.finished()
    turn = user_turns(chat_page).first
    await turn.hover()
    await turn.get_by_role("button", name="Edit your message and send it again").click()
    await turn.get_by_label("Edit your message", exact=True).fill("changed")
    await turn.get_by_label("Edit your message", exact=True).press("Escape")
    await expect(turn.get_by_label("Edit your message", exact=True)).to_have_count(0)
    await expect(turn.locator(".user-text")).to_have_text("Keep me")
    assert len(chat_page.fake.requests) == 1


async def test_retry_replaces_the_failed_exchange(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script(status=500, error="the model crashed"))
    await chat_page.ask("Hello?")
    await expect(chat_page.answer().locator(".turn-error-text")).to_have_text("The model crashed.")
    await chat_page.answer().get_by_role("button", name="Retry", exact=True).click()
    await chat_page.finished()
    await expect(user_turns(chat_page)).to_have_count(1)
    await expect(chat_page.page.locator(".turn-error")).to_be_hidden()
    assert chat_page.fake.requests[-1].body["messages"] == [{"role": "user", "content": "Hello?"}]


# -- conversations are kept


async def test_a_reload_keeps_the_conversation_and_it_goes_on(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script(token_lines(["**Bold** ", "answer"], thinking=["hmm"])))
    await chat_page.ask("Remember me")
    await chat_page.finished()
    await chat_page.page.reload()
    await expect(chat_page.page.locator(".user-text")).to_have_text(["Remember me"])
    await expect(chat_page.answer_text()).to_have_text("Bold answer")
    await expect(chat_page.answer_text().locator("strong")).to_have_text("Bold")
    await expect(chat_page.answer().locator(".turn-stats")).to_contain_text("First token after")
    await expect(chat_page.answer().locator("details.thinking")).to_be_visible()
    await chat_page.ask("And now?")
    await chat_page.finished(1)
    assert chat_page.fake.requests[-1].body["messages"][:2] == [
        {"role": "user", "content": "Remember me"},
        {"role": "assistant", "content": "**Bold** answer"},
    ]


async def test_new_chat_mid_stream_keeps_the_partial_answer_in_the_list(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script([chat_line("Half an "), chat_line("answer"), Hang()]))
    await chat_page.ask("A long story")
    await expect(chat_page.answer_text()).to_have_text("Half an answer")
    await chat_page.page.get_by_role("button", name="New chat").click()
    await asyncio.wait_for(chat_page.fake.requests[-1].disconnected.wait(), DISCONNECT_WAIT)
    await expect(chat_page.page.locator(".turn")).to_have_count(0)
    chats = chat_page.page.locator("#chats .chat-open")
    await expect(chats).to_have_text(["A long story"])
    await chats.first.click()
    await expect(chat_page.answer_text()).to_have_text("Half an answer")
    await expect(chat_page.answer().locator(".turn-status")).to_have_text("Stopped.")


async def test_conversations_are_listed_reopened_renamed_and_deleted(chat_page: ChatPage) -> None:
    page = chat_page.page
    chat_page.fake.push(Script(token_lines(["About cats."])))
    await chat_page.ask("Tell me about cats")
    await chat_page.finished()
    await page.get_by_role("button", name="New chat").click()
    chat_page.fake.push(Script(token_lines(["About dogs."])))
    await chat_page.ask("Tell me about dogs")
    await chat_page.finished()
    chats = page.locator("#chats .chat-open")
    await expect(chats).to_have_text(["Tell me about dogs", "Tell me about cats"])
    await expect(chats.first).to_have_attribute("aria-current", "true")

    await chats.nth(1).click()
    await expect(chat_page.answer_text()).to_have_text("About cats.")
    await expect(page.locator(".chat-open[aria-current=true]")).to_have_text("Tell me about cats")

    # Rename and Delete show on the item under the pointer (or with the keyboard's focus).
    await page.locator("#chats .chat", has_text="Tell me about cats").hover()
    await page.get_by_role("button", name="Rename “Tell me about cats”").click()
    name = page.get_by_label("New name of the conversation")
    await expect(name).to_be_focused()
    await name.fill("Cats")
    await name.press("Enter")
    await expect(page.locator(".chat-open[aria-current=true]")).to_have_text("Cats")

    await page.locator("#chats .chat", has_text="Tell me about dogs").hover()
    await page.get_by_role("button", name="Delete “Tell me about dogs”").click()
    await page.locator("#chats").get_by_role("button", name="Delete", exact=True).click()
    await expect(chats).to_have_text(["Cats"])
    await page.reload()
    await expect(page.locator("#chats .chat-open")).to_have_text(["Cats"])
    await expect(chat_page.answer_text()).to_have_text("About cats.")


# -- scrolling


async def test_a_new_question_sent_while_scrolled_up_comes_into_view(chat_page: ChatPage) -> None:
    long_answer = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(60))
    chat_page.fake.push(Script(token_lines([long_answer])))
    await chat_page.ask("Long, please")
    await chat_page.finished()
    await chat_page.page.locator("#conversation").evaluate("box => { box.scrollTop = 0; }")
    gate = asyncio.Event()
    chat_page.fake.push(Script([chat_line("Short."), Gate(gate), Line(done_line())]))
    await chat_page.ask("And a short one")
    await expect(chat_page.answer_text()).to_have_text("Short.")
    await expect(user_turns(chat_page).last).to_be_in_viewport()
    await expect(chat_page.answer()).to_be_in_viewport()
    gate.set()
    await chat_page.finished()


async def test_scrolled_up_while_streaming_a_jump_to_latest_button_brings_the_end_back(chat_page: ChatPage) -> None:
    gate = asyncio.Event()
    words = [f"Line {n} of many.\n\n" for n in range(80)]
    steps = token_lines(words)
    steps.insert(40, Gate(gate))
    chat_page.fake.push(Script(steps))
    await chat_page.ask("Many lines")
    await expect(chat_page.answer_text().locator("p")).to_have_count(40)
    box = chat_page.page.locator("#conversation")
    jump = chat_page.page.get_by_role("button", name="Jump to latest")
    await expect(jump).to_be_hidden()  # following the answer
    await box.evaluate("box => { box.scrollTop = 0; box.dispatchEvent(new Event('scroll')); }")
    await expect(jump).to_be_visible()
    gate.set()
    await chat_page.finished()
    # The reader stayed where they were: the answer did not pull them down.
    assert await box.evaluate("box => box.scrollTop") == 0
    await jump.click()
    await expect(jump).to_be_hidden()
    await expect(chat_page.answer().locator(".turn-stats")).to_be_in_viewport()
    await expect(chat_page.prompt).to_be_focused()


# -- still being written; Stop in Send's place; focus


async def test_a_wait_and_a_caret_show_the_answer_is_still_being_written(chat_page: ChatPage) -> None:
    first, second = asyncio.Event(), asyncio.Event()
    chat_page.fake.push(Script([Gate(first), chat_line("Growing"), Gate(second), Line(done_line())]))
    await chat_page.ask("Go")
    status = chat_page.answer().locator(".turn-status")
    await expect(status).to_have_text("Waiting for the model…")
    assert await status.evaluate("s => getComputedStyle(s, '::before').content") == '""'
    first.set()
    await expect(chat_page.answer_text()).to_have_text("Growing")
    caret = "() => getComputedStyle(document.querySelector('.turn-assistant .answer > :last-child'), '::after').content"
    assert await chat_page.page.evaluate(caret) == '""'
    await expect(status).to_be_hidden()
    second.set()
    await chat_page.finished()
    assert await chat_page.page.evaluate(caret) == "none"


async def test_stop_takes_sends_place_and_the_message_box_keeps_its_width(chat_page: ChatPage) -> None:
    await chat_page.prompt.fill("x")
    send_box = await chat_page.send_button.bounding_box()
    prompt_box = await chat_page.prompt.bounding_box()
    chat_page.fake.push(Script([chat_line("Streaming"), Hang()]))
    await chat_page.prompt.press("Enter")
    await expect(chat_page.stop_button).to_be_visible()
    assert await chat_page.stop_button.bounding_box() == send_box
    assert await chat_page.prompt.bounding_box() == prompt_box
    # A neutral colour, Send's own, not a warning's.
    colours = await chat_page.page.evaluate(
        """() => [getComputedStyle(document.querySelector('#stop')).backgroundColor,
                  getComputedStyle(document.querySelector('#send')).backgroundColor]"""
    )
    assert colours[0] == colours[1], colours
    await chat_page.stop_button.click()
    await expect(chat_page.prompt).to_be_focused()


async def test_focus_stays_in_the_message_box_after_clicking_send_and_after_an_error(chat_page: ChatPage) -> None:
    gate = asyncio.Event()
    chat_page.fake.push(Script([chat_line("ok"), Gate(gate), Line(done_line())]))
    await chat_page.prompt.fill("Clicked")
    await chat_page.send_button.click()
    await expect(chat_page.prompt).to_be_focused()
    gate.set()
    await chat_page.finished()
    await expect(chat_page.prompt).to_be_focused()
    chat_page.fake.push(Script(status=500, error="broken"))
    await chat_page.prompt.fill("Again")
    await chat_page.send_button.click()
    await expect(chat_page.answer().locator(".turn-error")).to_be_visible()
    await expect(chat_page.prompt).to_be_focused()


# -- long input, narrow screens


async def test_a_long_message_is_collapsed_behind_show_more(chat_page: ChatPage) -> None:
    text = "\n".join(f"line {n} of a pasted log" for n in range(400))
    await chat_page.ask(text)
    await chat_page.finished()
    turn = user_turns(chat_page).first
    height = (await turn.locator(".user-text").bounding_box() or {}).get("height", 0)
    assert 0 < height < 300, height
    more = turn.get_by_role("button", name="Show more")
    await expect(more).to_have_attribute("aria-expanded", "false")
    await more.click()
    await expect(turn.get_by_role("button", name="Show less")).to_have_attribute("aria-expanded", "true")
    height = (await turn.locator(".user-text").bounding_box() or {}).get("height", 0)
    assert height > 2000, height
    assert chat_page.fake.requests[-1].body["messages"][0]["content"] == text


async def test_a_live_count_shows_the_servers_limit_before_sending(
    browser: Browser, make_service: MakeService, fake_ollama: FakeOllama
) -> None:
    service = await make_service(max_prompt_chars=1000)
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.open()
        count = chat.page.locator("#count")
        await chat.prompt.fill("a" * 400)
        await expect(count).to_be_hidden()
        await chat.prompt.fill("a" * 600)
        await expect(count).to_have_text("600 / 1,000")
        await chat.prompt.fill("a" * 1200)
        await expect(count).to_have_text("1,200 characters: the limit is 1,000")
        await expect(chat.send_button).to_be_disabled()
        await chat.prompt.press("Enter")
        assert fake_ollama.requests == []
        await chat.prompt.fill("short")
        await expect(count).to_be_hidden()
        await expect(chat.send_button).to_be_enabled()
        await chat.check_clean()
    finally:
        await chat.page.context.close()


async def test_on_a_phone_enter_says_send_and_a_button_adds_a_line(
    browser: Browser, service: Service, fake_ollama: FakeOllama
) -> None:
    chat = await new_chat_page(
        browser, service, fake_ollama, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    try:
        await chat.open()
        await expect(chat.prompt).to_have_attribute("enterkeyhint", "send")
        await chat.prompt.fill("first line")
        await chat.page.get_by_role("button", name="New line").tap()
        await chat.page.keyboard.type("second line")
        await expect(chat.prompt).to_have_value("first line\nsecond line")
        await chat.send_button.tap()
        await chat.finished()
        assert fake_ollama.requests[-1].body["messages"] == [{"role": "user", "content": "first line\nsecond line"}]
        await chat.check_clean()
    finally:
        await chat.page.context.close()


async def test_a_table_on_a_phone_keeps_words_whole_and_scrolls_in_its_box(
    browser: Browser, service: Service, fake_ollama: FakeOllama
) -> None:
    chat = await new_chat_page(browser, service, fake_ollama, viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        await chat.open()
        table = (
            "| Language | Paradigm | First appeared | Typical use |\n|---|---|---|---|\n"
            "| Python | multi-paradigm | 1991 | scripting and data analysis |\n"
            "| Haskell | purely functional | 1990 | compilers and research |\n"
        )
        fake_ollama.push(Script(token_lines([table])))
        await chat.ask("A table")
        await chat.finished()
        report = await chat.page.evaluate(
            """() => {
              const wrap = document.querySelector(".table-wrap");
              const words = [...wrap.querySelectorAll("th, td")].flatMap((cell) => {
                // A word broken across lines has more than one client rect.
                const range = document.createRange();
                return [...cell.childNodes].filter((n) => n.nodeType === 3).flatMap((node) =>
                  [...node.data.matchAll(/[^\\s-]+/g)].map((m) => {
                    range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
                    return [m[0], range.getClientRects().length];
                  }));
              });
              return {
                broken: words.filter(([, rects]) => rects > 1).map(([w]) => w),
                scrolls: wrap.scrollWidth > wrap.clientWidth,
                page: document.documentElement.scrollWidth <= document.documentElement.clientWidth,
              };
            }"""
        )
        assert report == {"broken": [], "scrolls": True, "page": True}
        await chat.check_clean()
    finally:
        await chat.page.context.close()


# -- errors with a way forward


async def test_a_conversation_that_outgrew_the_limit_offers_a_new_chat(
    browser: Browser, make_service: MakeService, fake_ollama: FakeOllama
) -> None:
    service = await make_service(max_messages=2)
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.open()
        await chat.ask("One")
        await chat.finished()
        await chat.ask("Two")
        error = chat.answer().locator(".turn-error-text")
        await expect(error).to_have_text(
            "This conversation has 3 messages, and the server takes at most 2. Start a new chat to go on."
        )
        await chat.answer().get_by_role("button", name="Start a new chat").click()
        await expect(chat.page.locator(".turn")).to_have_count(0)
        await expect(chat.prompt).to_be_focused()
        await chat.check_clean()
    finally:
        await chat.page.context.close()


async def test_a_message_over_the_limit_is_named_in_plain_words(
    browser: Browser, make_service: MakeService, fake_ollama: FakeOllama
) -> None:
    service = await make_service(max_prompt_chars=20_000)
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        # The page has not learnt the limit (as with an older server): the server's answer says it.
        await chat.page.route("**/openapi.json", lambda route: route.fulfill(status=404))
        await chat.open()
        await chat.ask("x" * 33_000)
        await expect(chat.answer().locator(".turn-error-text")).to_have_text(
            "A message is too long: 33,000 characters, and the limit is 20,000. Shorten it or split it."
        )
        await chat.check_clean()
    finally:
        await chat.page.context.close()


# -- how it looks when empty


async def test_the_empty_page_offers_suggestions_and_one_sends(chat_page: ChatPage) -> None:
    suggestions = chat_page.page.get_by_role("group", name="Suggestions").get_by_role("button")
    await expect(suggestions).to_have_count(4)
    first = await suggestions.first.text_content()
    await suggestions.first.click()
    await chat_page.finished()
    assert chat_page.fake.requests[-1].body["messages"] == [{"role": "user", "content": first}]
    await expect(chat_page.page.locator("#empty")).to_be_hidden()
    await expect(chat_page.page.locator("#demo-note")).to_be_hidden()  # not the built-in model


async def test_on_the_built_in_model_one_line_says_it_is_a_tiny_demo(chat_page: ChatPage) -> None:
    listing = {"models": [{"name": "SmolLM2-135M-Instruct", "provider": "local"}], "default": "SmolLM2-135M-Instruct"}

    async def models(route: Route) -> None:
        await route.fulfill(json=listing)

    # The listing the built-in model gives (the model itself is tested in tests/test_local_provider.py).
    await chat_page.page.route("**/api/models", models)
    await chat_page.page.reload()
    note = chat_page.page.locator("#demo-note")
    await expect(note).to_have_text(
        "SmolLM2-135M-Instruct is a tiny built-in demo model: its answers are often wrong. "
        "Connect Ollama or an OpenAI-compatible server for real ones."
    )


# -- tool calls


def event_stream(*frames: tuple[str, dict[str, object]]) -> str:
    numbered = enumerate(frames, 1)
    return "".join(f"event: {event}\ndata: {json.dumps(data)}\nid: {n}\n\n" for n, (event, data) in numbered)


TOOL_CALL = {"id": "call_0", "name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'}


async def answer_with_tool_call(chat: ChatPage, call: dict[str, str]) -> None:
    """/api/chat answers with native frames carrying a tool call, as the service sends them for a tool-using model."""
    body = event_stream(
        ("meta", {"id": "s1", "model": MODEL, "provider": "ollama"}),
        ("tool_call", call),
        ("done", {"finish_reason": "tool_calls", "usage": {}, "timing": {}, "skipped_lines": 0}),
    )

    async def fulfil(route: Route) -> None:
        await route.fulfill(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8"}, body=body)

    await chat.page.route("**/api/chat", fulfil)


async def test_a_tool_call_is_shown_readably(chat_page: ChatPage) -> None:
    await answer_with_tool_call(chat_page, TOOL_CALL)
    await chat_page.ask("Weather in Paris?")
    turn = chat_page.answer()
    call = turn.locator(".tool-call")
    await expect(call.locator(".tool-call-head")).to_have_text("Asks to use the tool get_weather")
    await expect(call.locator("pre code")).to_have_text('{\n  "city": "Paris",\n  "unit": "celsius"\n}')
    await expect(turn.locator(".turn-stats")).to_have_text(
        "The model asked to use a tool; this page does not run tools."
    )
    await chat_page.page.reload()
    await expect(chat_page.answer().locator(".tool-call-head")).to_have_text("Asks to use the tool get_weather")
