"""The chat page in real Chromium: streaming, Stop, errors, history, models, keyboard."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, expect

from sse.settings import Settings
from sse.web.keys import REGISTRY
from tests.browser.conftest import ChatPage, new_chat_page
from tests.conftest import NO_LIMITS
from tests.fakes.ollama import MODEL, FakeOllama, Gate, Hang, Line, Script, done_line, token_lines
from tests.helpers import Service, start_service

DISCONNECT_WAIT = 10.0


def chat_line(text: str, model: str = MODEL) -> Line:
    return Line(
        {"model": model, "created_at": "2025-08-02T22:05:23Z", "message": {"role": "assistant", "content": text}}
    )


async def test_tokens_appear_in_the_dom_while_the_upstream_is_still_sending(chat_page: ChatPage) -> None:
    first, second = asyncio.Event(), asyncio.Event()
    chat_page.fake.push(
        Script(
            [
                chat_line("The first paragraph is complete.\n\n"),
                Gate(first),
                chat_line("The second"),
                Gate(second),
                chat_line(" one ends here."),
                Line(done_line(eval_count=3)),
            ]
        )
    )
    await chat_page.ask("Two paragraphs, please")
    answer = chat_page.answer()
    paragraphs = chat_page.answer_text().locator("p")

    # The upstream is held at the first gate: nothing after it has been sent.
    await expect(paragraphs.first).to_have_text("The first paragraph is complete.")
    assert not chat_page.fake.requests[-1].finished
    await expect(answer.locator(".turn-stats")).to_be_hidden()
    await expect(chat_page.stop_button).to_be_visible()
    await expect(answer).to_have_attribute("aria-busy", "true")

    # From here on, the finished paragraph must not be touched again.
    await paragraphs.first.evaluate(
        """p => { window.__mutations = 0;
                  new MutationObserver(list => { window.__mutations += list.length; })
                    .observe(p, {subtree: true, childList: true, characterData: true, attributes: true});
                  window.__firstParagraph = p; }"""
    )
    first.set()
    await expect(paragraphs.nth(1)).to_have_text("The second")
    assert not chat_page.fake.requests[-1].finished
    await expect(answer.locator(".turn-stats")).to_be_hidden()

    second.set()
    await chat_page.finished()
    await expect(paragraphs.nth(1)).to_have_text("The second one ends here.")
    assert chat_page.fake.requests[-1].finished
    assert await chat_page.page.evaluate("window.__mutations") == 0
    assert await chat_page.page.evaluate("window.__firstParagraph.isConnected")
    await expect(answer).to_have_attribute("aria-busy", "false")
    await expect(chat_page.stop_button).to_be_hidden()


async def test_stop_keeps_the_partial_answer_closes_the_upstream_and_allows_sending_at_once(
    chat_page: ChatPage,
) -> None:
    chat_page.fake.push(Script([chat_line("Partial "), chat_line("answer"), Hang()]))
    await chat_page.ask("Tell me a long story")
    await expect(chat_page.answer_text()).to_have_text("Partial answer")

    await chat_page.stop_button.click()
    record = chat_page.fake.requests[-1]
    await asyncio.wait_for(record.disconnected.wait(), DISCONNECT_WAIT)
    assert not record.finished

    stopped = chat_page.answer()
    await expect(stopped.locator(".turn-status")).to_have_text("Stopped.")
    await expect(stopped).to_have_class(re.compile(r"\bstopped\b"))
    await expect(chat_page.answer_text()).to_have_text("Partial answer")
    await expect(chat_page.stop_button).to_be_hidden()
    await expect(chat_page.send_button).to_be_visible()
    await expect(chat_page.prompt).to_be_focused()

    # Sending again works at once, and the stopped answer is part of the history.
    await chat_page.ask("Go on")
    await chat_page.finished()
    await expect(chat_page.answer_text()).to_have_text("Hello from the fake model.")
    assert chat_page.fake.requests[-1].body["messages"] == [
        {"role": "user", "content": "Tell me a long story"},
        {"role": "assistant", "content": "Partial answer"},
        {"role": "user", "content": "Go on"},
    ]
    await expect(chat_page.page.locator(".turn-assistant.stopped")).to_have_count(1)


async def test_escape_stops_even_before_the_first_token(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script([Hang()]))  # a model that is still loading
    await chat_page.ask("Anyone there?")
    await expect(chat_page.answer().locator(".turn-status")).to_have_text("Waiting for the model…")
    await chat_page.page.keyboard.press("Escape")
    await asyncio.wait_for(chat_page.fake.requests[-1].disconnected.wait(), DISCONNECT_WAIT)
    await expect(chat_page.answer().locator(".turn-status")).to_have_text("Stopped before the answer began.")
    await expect(chat_page.send_button).to_be_visible()

    # Nothing was answered, so nothing of it is sent as history.
    await chat_page.ask("Hello?")
    await chat_page.finished()
    assert chat_page.fake.requests[-1].body["messages"] == [{"role": "user", "content": "Hello?"}]


async def test_sending_is_held_while_an_answer_streams(chat_page: ChatPage) -> None:
    gate = asyncio.Event()
    steps = token_lines(["Still ", "going"])
    steps.insert(1, Gate(gate))
    chat_page.fake.push(Script(steps))
    await chat_page.ask("First")
    await expect(chat_page.answer_text()).to_have_text("Still")

    # Stop has taken Send's place.
    await expect(chat_page.send_button).to_be_hidden()
    await expect(chat_page.stop_button).to_be_visible()
    await chat_page.prompt.fill("Second, typed while the first streams")
    await chat_page.prompt.press("Enter")
    await expect(chat_page.prompt).to_have_value("Second, typed while the first streams")
    assert len(chat_page.fake.requests) == 1

    gate.set()
    await chat_page.finished()
    await chat_page.prompt.press("Enter")
    await chat_page.finished(1)
    assert len(chat_page.fake.requests) == 2


async def test_a_midstream_error_shows_under_the_partial_answer(chat_page: ChatPage) -> None:
    chat_page.fake.push(
        Script([chat_line("Half of "), chat_line("an answer"), Line({"error": "llama runner process has terminated"})])
    )
    await chat_page.ask("Crash, please")
    answer = chat_page.answer()
    error = answer.locator(".turn-error")
    await expect(error.locator(".turn-error-text")).to_have_text(
        "The answer stopped early: Llama runner process has terminated."
    )
    await expect(error).to_have_attribute("role", "alert")
    await expect(chat_page.answer_text()).to_have_text("Half of an answer")
    # The error sits under the partial answer, inside the same turn.
    error_box = await error.bounding_box()
    text_box = await chat_page.answer_text().bounding_box()
    assert error_box is not None
    assert text_box is not None
    assert error_box["y"] >= text_box["y"] + text_box["height"]
    await expect(chat_page.send_button).to_be_visible()
    await expect(chat_page.prompt).to_be_focused()


@pytest.mark.parametrize(
    ("status", "error", "headers", "shown"),
    [
        (404, "model 'llama3.2:latest' not found", {}, "Model 'llama3.2:latest' not found."),
        (
            429,
            "too many requests",
            {"Retry-After": "7"},
            "Too many requests.",
        ),
        (
            503,
            "server busy, please try again.  maximum pending requests exceeded",
            {"Retry-After": "120"},
            "Server busy, please try again.  maximum pending requests exceeded.",
        ),
        (401, "unauthorized", {}, "The model server refused this service's credentials (HTTP 401)."),
        (
            500,
            "llama runner process has terminated: signal: killed",
            {},
            "Llama runner process has terminated: signal: killed.",
        ),
    ],
    ids=["404-model-not-found", "429-rate-limited", "503-busy", "401-upstream-auth", "500-upstream-error"],
)
async def test_an_error_before_the_stream_shows_the_servers_message(
    chat_page: ChatPage, status: int, error: str, headers: dict[str, str], shown: str
) -> None:
    chat_page.fake.push(Script(status=status, error=error, headers=headers))
    await chat_page.ask("Hello")
    await expect(chat_page.answer().locator(".turn-error-text")).to_have_text(shown)
    await expect(chat_page.answer_text()).to_be_empty()
    # Nothing came back: Retry asks again (after the server's wait, counted down), in place.
    retry = chat_page.answer().locator(".turn-error").get_by_role("button", name=re.compile("^Retry"))
    await expect(retry).to_be_visible()
    if "Retry-After" in headers:
        await expect(retry).to_be_disabled()
        await expect(retry).to_have_text(re.compile(r"^Retry in \d+ s$"))
    else:
        await expect(retry).to_be_enabled()
        await retry.click()
        await chat_page.finished()
        await expect(chat_page.page.locator(".turn-user")).to_have_count(1)
        await expect(chat_page.answer_text()).to_have_text("Hello from the fake model.")
    await expect(chat_page.send_button).to_be_visible()
    await expect(chat_page.prompt).to_be_focused()


async def test_a_restarting_service_says_so_with_its_retry_time(chat_page: ChatPage) -> None:
    chat_page.service.app[REGISTRY].draining = True
    await chat_page.ask("Hello")
    await expect(chat_page.answer().locator(".turn-error-text")).to_have_text("The server is restarting.")
    await expect(chat_page.answer().get_by_role("button", name=re.compile("^Retry"))).to_be_visible()
    chat_page.service.app[REGISTRY].draining = False


async def test_a_network_failure_says_so(browser: Browser, fake_ollama: FakeOllama) -> None:
    service = await start_service(Settings(provider="ollama", ollama_url=fake_ollama.url, port=0))
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.open()
        await service.stop()  # the server is gone, its connections too
        await chat.ask("Are you there?")
        await expect(chat.answer().locator(".turn-error-text")).to_have_text(
            "Could not reach the server. Check the connection and try again."
        )
        await chat.check_clean()
    finally:
        await chat.page.context.close()


async def test_the_second_turn_sends_the_first_turn_and_new_chat_clears_it(chat_page: ChatPage) -> None:
    await chat_page.ask("What is SSE?")
    await chat_page.finished()
    chat_page.fake.push(Script(token_lines(["It is ", "a stream."])))
    await chat_page.ask("Say more")
    await chat_page.finished(1)
    assert chat_page.fake.requests[1].body["messages"] == [
        {"role": "user", "content": "What is SSE?"},
        {"role": "assistant", "content": "Hello from the fake model."},
        {"role": "user", "content": "Say more"},
    ]
    await expect(chat_page.page.locator(".turn-user")).to_have_count(2)

    await chat_page.page.get_by_role("button", name="New chat").click()
    await expect(chat_page.page.locator(".turn")).to_have_count(0)
    await expect(chat_page.prompt).to_be_focused()
    # The conversation left is kept in the list.
    await expect(chat_page.page.locator("#chats .chat-open")).to_have_text(["What is SSE?"])
    await chat_page.ask("Fresh start")
    await chat_page.finished()
    assert chat_page.fake.requests[2].body["messages"] == [{"role": "user", "content": "Fresh start"}]


async def test_earlier_turns_are_not_rerendered_while_a_new_answer_streams(chat_page: ChatPage) -> None:
    await chat_page.ask("One")
    await chat_page.finished()
    await chat_page.answer(0).evaluate(
        """turn => { window.__oldTurnMutations = 0;
                     new MutationObserver(list => { window.__oldTurnMutations += list.length; })
                       .observe(turn, {subtree: true, childList: true, characterData: true, attributes: true}); }"""
    )
    chat_page.fake.push(Script(token_lines([f"word{n} " for n in range(40)])))
    await chat_page.ask("Two")
    await chat_page.finished(1)
    assert await chat_page.page.evaluate("window.__oldTurnMutations") == 0


async def test_thinking_is_shown_collapsed_and_apart_from_the_answer(chat_page: ChatPage) -> None:
    chat_page.fake.push(Script(token_lines(["The answer."], thinking=["Let me ", "consider this."])))
    await chat_page.ask("Think first")
    answer = await chat_page.finished()
    thinking = answer.locator("details.thinking")
    await expect(thinking).to_be_visible()
    assert await thinking.get_attribute("open") is None
    await expect(thinking.locator(".thinking-text")).to_be_hidden()
    await expect(chat_page.answer_text()).to_have_text("The answer.")
    await thinking.locator("summary").click()
    await expect(thinking.locator(".thinking-text")).to_have_text("Let me consider this.")
    # The history carries the answer, not the thinking.
    chat_page.fake.push(Script(token_lines(["ok"])))
    await chat_page.ask("Next")
    await chat_page.finished(1)
    assert chat_page.fake.requests[-1].body["messages"][1] == {"role": "assistant", "content": "The answer."}


async def test_the_model_picker_lists_the_upstreams_models_and_remembers_the_choice(chat_page: ChatPage) -> None:
    picker = chat_page.model_picker
    await expect(picker.locator("option")).to_have_text(["llama3.2:latest", "qwen3:4b"])
    await picker.select_option("qwen3:4b")
    await chat_page.ask("Which model are you?")
    answer = await chat_page.finished()
    assert chat_page.fake.requests[-1].body["model"] == "qwen3:4b"
    await expect(answer.locator(".turn-model")).to_have_text("qwen3:4b")

    await chat_page.page.reload()
    await expect(picker).to_have_value("qwen3:4b")
    assert await chat_page.page.evaluate("localStorage.getItem('llm-sse.model')") == "qwen3:4b"


async def test_enter_sends_and_shift_enter_adds_a_line(chat_page: ChatPage) -> None:
    prompt = chat_page.prompt
    await prompt.focus()
    await chat_page.page.keyboard.type("line one")
    await chat_page.page.keyboard.press("Shift+Enter")
    await chat_page.page.keyboard.type("line two")
    await expect(prompt).to_have_value("line one\nline two")
    assert chat_page.fake.requests == []
    await chat_page.page.keyboard.press("Enter")
    await chat_page.finished()
    assert chat_page.fake.requests[-1].body["messages"] == [{"role": "user", "content": "line one\nline two"}]
    await expect(prompt).to_have_value("")
    await expect(chat_page.page.locator(".user-text")).to_have_text("line one\nline two")


async def test_the_page_works_by_keyboard_alone(chat_page: ChatPage) -> None:
    page = chat_page.page
    await page.locator("#sidebar-toggle").focus()
    order = []
    for _ in range(8):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert order == ["model", "new-chat", "conversation", *["suggestion"] * 4, "prompt"]
    await page.keyboard.type("x")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "send"
    await page.locator("#prompt").fill("")

    # Pick a model, ask, copy the code, stop: all from the keyboard.
    await page.locator("#model").focus()
    await page.keyboard.press("ArrowDown")
    await expect(chat_page.model_picker).to_have_value("qwen3:4b")
    chat_page.fake.push(Script(token_lines(["```sh\necho hi\n```\n"])))
    await page.locator("#prompt").focus()
    await page.keyboard.type("A code block")
    await page.keyboard.press("Enter")
    await chat_page.finished()
    assert chat_page.fake.requests[-1].body["model"] == "qwen3:4b"
    copy = page.get_by_role("button", name="Copy sh code")
    await copy.focus()
    await page.keyboard.press("Enter")
    await expect(copy).to_have_text("Copied")

    chat_page.fake.push(Script([chat_line("wait for it"), Hang()]))
    await page.locator("#prompt").focus()
    await page.keyboard.type("Long one")
    await page.keyboard.press("Enter")
    await expect(chat_page.answer_text()).to_have_text("wait for it")
    await page.keyboard.press("Escape")
    await asyncio.wait_for(chat_page.fake.requests[-1].disconnected.wait(), DISCONNECT_WAIT)


async def test_every_control_is_labelled_and_the_answers_are_announced_politely(chat_page: ChatPage) -> None:
    page = chat_page.page
    await expect(page.get_by_label("Model")).to_be_visible()
    await expect(page.get_by_label("Message")).to_be_visible()
    await expect(page.get_by_role("button", name="New chat")).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    await expect(page.locator("#turns")).to_have_attribute("aria-live", "polite")
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll("button, select, textarea, input, a[href]")]
                 .filter(el => !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim()))
                 .map(el => el.outerHTML)"""
    )
    assert unlabelled == []


async def test_the_page_is_served_with_its_security_headers(chat_page: ChatPage, service: Service) -> None:
    response = await chat_page.page.goto(f"{service.url}/")
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-cache"
    assert headers["content-type"] == "text/html; charset=utf-8"


ACCESS_KEY = "sk-chat-0123456789abcdef"


async def test_a_server_that_needs_a_key_asks_for_one_and_the_page_then_works(
    browser: Browser, fake_ollama: FakeOllama
) -> None:
    service = await start_service(
        Settings(provider="ollama", ollama_url=fake_ollama.url, port=0, api_keys=ACCESS_KEY, **NO_LIMITS)
    )
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.page.goto(f"{service.url}/")
        # Listing the models was refused: the page asks for a key instead of failing.
        key_field = chat.page.get_by_label("Access key")
        await expect(key_field).to_be_visible()
        await expect(chat.page.locator("#key-reason")).to_have_text("This chat needs an access key.")
        await key_field.fill("not-the-key")
        await key_field.press("Enter")
        await expect(key_field).to_be_visible()  # the models were refused again
        await expect(chat.page.locator("#key-reason")).to_have_text(
            "The server did not accept this access key. Enter another."
        )
        await key_field.fill(ACCESS_KEY)
        await chat.page.get_by_role("button", name="Use this key").click()
        await expect(key_field).to_be_hidden()
        await expect(chat.model_picker).to_have_value(fake_ollama.models[0])
        await chat.ask("Hello")
        await chat.finished()
        await expect(chat.answer_text()).to_have_text("Hello from the fake model.")
        # The key is kept for the next visit.
        await chat.page.reload()
        await expect(chat.model_picker).to_have_value(fake_ollama.models[0])
        await expect(key_field).to_be_hidden()
        await chat.check_clean()
    finally:
        await chat.page.context.close()
        await service.stop()
