"""Model output is untrusted: whatever an answer contains, it renders as inert text or safe markup.

Through every path it can take into the page: streaming, highlighted code
blocks and their language names, Copy, Edit, Regenerate, tool calls, and a
reload from the browser's storage (stored output is no more trusted).
"""

from __future__ import annotations

import json

from playwright.async_api import Browser, Locator, Page, Route, expect

from tests.browser.conftest import ChatPage, new_chat_page
from tests.fakes.ollama import FakeOllama, Script, token_lines
from tests.helpers import Service

ATTACKS = [
    "<img src=x onerror=\"window.__xss.push('img')\">",
    "<script>window.__xss.push('script')</script>",
    "<svg onload=\"window.__xss.push('svg')\"><circle r=9 /></svg>",
    "<iframe src=\"javascript:parent.__xss.push('iframe')\"></iframe>",
    "<a href=\"javascript:window.__xss.push('raw-a')\">raw link</a>",
    '<div style="position:fixed;inset:0;background:red" onclick="window.__xss.push(\'div\')">cover</div>',
    "<style>body { display: none }</style>",
    '<meta http-equiv="refresh" content="0;url=https://example.com/">',
    '<base href="https://example.com/">',
    '<form action="https://example.com/"><input name=q autofocus onfocus="window.__xss.push(\'input\')"></form>',
    "<object data=\"javascript:window.__xss.push('object')\"></object><embed src=x>",
    "<b>bold?</b> <details open ontoggle=\"window.__xss.push('details')\">x</details>",
    "[click me](javascript:window.__xss.push('md-link'))",
    "[upper](JaVaScRiPt:window.__xss.push('md-upper'))",
    "[spaced]( javascript:window.__xss.push('md-spaced'))",
    "[entity](&#106;avascript:window.__xss.push('md-entity'))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[vbs](vbscript:msgbox(1))",
    "![pixel](javascript:window.__xss.push('md-image'))",
    "![remote](https://example.com/x.png\" onerror=\"window.__xss.push('md-img-attr'))",
    "<javascript:window.__xss.push('autolink')>",
    "[safe link](https://example.com/docs?a=1&b=2)",
]

ANSWER = (
    "A paragraph, then every trick in the book:\n\n"
    + "\n\n".join(ATTACKS)
    + "\n\n- a list item with <img src=x onerror=\"window.__xss.push('li')\">\n"
    + "- and **bold <script>window.__xss.push('bold')</script>**\n\n"
    + "```html\n<script>window.__xss.push('code')</script>\n```\n\n"
    + "```<img src=x onerror=\"window.__xss.push('lang')\">\n<b>in a fence with a hostile name</b>\n```\n\n"
    + "```javascript\" onmouseover=\"window.__xss.push('lang-attr')\n"
    + "document.body.innerHTML = '<img src=x onerror=window.__xss.push(1)>';\n```\n"
)

# Elements the renderer may create; anything else in an answer is an injection.
ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "a", "ul", "ol", "li", "blockquote",
    "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "div", "span", "button",
}  # fmt: skip


REPORT = """
turn => ({
    tags: [...new Set([...turn.querySelectorAll(".answer *, .thinking-text *, .tool-calls *")]
        .map(el => el.localName))],
    handlers: [...turn.querySelectorAll("*")].flatMap(el => [...el.attributes]
        .filter(a => a.name.startsWith("on") || a.name === "style" || a.name === "srcdoc")
        .map(a => `${el.localName}[${a.name}]`)),
    hrefs: [...turn.querySelectorAll("a")].map(a => a.getAttribute("href")),
    rels: [...turn.querySelectorAll("a")].map(a => a.rel),
})
"""

# Elements the page's own interface may hold; anything else anywhere is an injection.
INJECTED = (
    "img, iframe, object, embed, svg:not(.icon), base, meta[http-equiv], style, "
    "form:not(#composer):not(#key-form):not(.edit-form):not(.chat-rename)"
)


async def assert_inert(page: Page, answer: Locator) -> None:
    """Nothing ran, and the answer holds only the builder's elements, no handlers, only safe links."""
    assert await page.evaluate("window.__xss") == []
    report = await answer.evaluate(REPORT)
    assert set(report["tags"]) <= ALLOWED_TAGS, f"unexpected elements: {set(report['tags']) - ALLOWED_TAGS}"
    assert report["handlers"] == []
    assert all(href.startswith(("https://", "http://", "mailto:")) for href in report["hrefs"]), report["hrefs"]
    assert set(report["rels"]) <= {"noopener noreferrer nofollow"}
    assert await page.locator("script").count() == 1
    assert await page.locator(INJECTED).count() == 0
    await expect(page.locator("body")).to_be_visible()


async def stream_the_attacks(chat_page: ChatPage, question: str = "Show me some HTML") -> Locator:
    page = chat_page.page
    await page.evaluate("window.__xss = []")
    # Split into small pieces so partial tags are rendered (and re-rendered) while streaming.
    pieces = [ANSWER[i : i + 5] for i in range(0, len(ANSWER), 5)]
    thinking = ["<img src=x onerror=\"window.__xss.push('thinking')\"> ", "<script>window.__xss.push('t2')</script>"]
    chat_page.fake.push(Script(token_lines(pieces, thinking=thinking)))
    await chat_page.ask(question)
    return await chat_page.finished()


async def test_html_scripts_and_javascript_links_in_an_answer_are_inert(chat_page: ChatPage) -> None:
    page = chat_page.page
    answer = await stream_the_attacks(chat_page)
    await answer.locator("details.thinking summary").click()  # open the thinking too

    assert await page.evaluate("window.__xss") == []
    report = await answer.evaluate(
        """turn => ({
            tags: [...new Set([...turn.querySelectorAll(".answer *, .thinking-text *")].map(el => el.localName))],
            handlers: [...turn.querySelectorAll("*")].flatMap(el => [...el.attributes]
                .filter(a => a.name.startsWith("on") || a.name === "style" || a.name === "srcdoc")
                .map(a => `${el.localName}[${a.name}]`)),
            hrefs: [...turn.querySelectorAll("a")].map(a => a.getAttribute("href")),
            rels: [...turn.querySelectorAll("a")].map(a => a.rel),
        })"""
    )
    assert set(report["tags"]) <= ALLOWED_TAGS, f"unexpected elements: {set(report['tags']) - ALLOWED_TAGS}"
    assert report["handlers"] == []
    assert "https://example.com/docs?a=1&b=2" in report["hrefs"]
    assert all(href.startswith(("https://", "http://", "mailto:")) for href in report["hrefs"]), report["hrefs"]
    assert set(report["rels"]) == {"noopener noreferrer nofollow"}
    # Nothing leaked out of the answer either: the page still has its one script and no injected elements.
    assert await page.locator("script").count() == 1
    injected = page.locator(
        "img, iframe, object, embed, svg:not(.icon), base, meta[http-equiv], form:not(#composer):not(#key-form)"
    )
    assert await injected.count() == 0
    await expect(page.locator("body")).to_be_visible()

    text = await chat_page.answer_text().inner_text()
    for shown in (
        "<img src=x onerror=\"window.__xss.push('img')\">",
        "<script>window.__xss.push('script')</script>",
        "[click me](javascript:window.__xss.push('md-link'))",
        "<javascript:window.__xss.push('autolink')>",
        "<b>bold?</b>",
    ):
        assert shown in text, f"{shown!r} is not shown as text"
    await expect(answer.locator(".thinking-text")).to_contain_text("<img src=x onerror=")
    await expect(answer.locator("pre code").first).to_have_text("<script>window.__xss.push('code')</script>")
    await expect(answer.locator(".code-lang").nth(1)).to_have_text("<img")
    await expect(answer.locator("pre code").nth(1)).to_have_text("<b>in a fence with a hostile name</b>")
    await expect(answer.locator("ul > li")).to_have_count(2)
    await expect(answer.locator("a", has_text="safe link")).to_have_count(1)
    # A language name with a quote in it is no language: plain text, its name as text.
    await expect(answer.locator(".code-lang").nth(2)).to_have_text('javascript"')
    assert await answer.locator("pre code").nth(2).locator("span").count() == 0
    await assert_inert(page, answer)


async def test_copy_edit_regenerate_and_a_reload_keep_the_output_inert(
    browser: Browser, service: Service, fake_ollama: FakeOllama
) -> None:
    chat = await new_chat_page(browser, service, fake_ollama)
    try:
        await chat.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service.url)
        await chat.open()
        page = chat.page
        question = ATTACKS[0] + "\n" + ATTACKS[1]
        answer = await stream_the_attacks(chat, question)
        await expect(page.locator(".user-text")).to_have_text(question)

        # Copy: the Markdown source as text, nothing run.
        await answer.get_by_role("button", name="Copy the answer as Markdown").click()
        assert await page.evaluate("navigator.clipboard.readText()") == ANSWER
        await assert_inert(page, answer)

        # Regenerate: the same attacks again, in place.
        await page.evaluate("window.__xss = []")
        fake_ollama.push(Script(token_lines([ANSWER[i : i + 9] for i in range(0, len(ANSWER), 9)])))
        await answer.get_by_role("button", name="Regenerate the answer").click()
        answer = await chat.finished()
        await assert_inert(page, answer)

        # Edit: the question is text in the editor, and text again once sent.
        turn = page.locator(".turn-user").first
        await turn.hover()
        await turn.get_by_role("button", name="Edit your message and send it again").click()
        await expect(turn.get_by_label("Edit your message", exact=True)).to_have_value(question)
        fake_ollama.push(Script(token_lines([ANSWER])))
        await turn.get_by_label("Edit your message", exact=True).press("Enter")
        answer = await chat.finished()
        await expect(page.locator(".user-text")).to_have_text(question)
        await assert_inert(page, answer)

        # A reload: the stored answer is rendered again, as untrusted as ever.
        await page.reload()
        await page.evaluate("window.__xss = []")
        answer = chat.answer()
        await expect(answer.locator(".code-lang").nth(1)).to_have_text("<img")
        await expect(chat.answer_text()).to_contain_text("<script>window.__xss.push('script')</script>")
        await expect(page.locator("#chats .chat-open")).to_have_text([question.split("\n")[0]])
        await assert_inert(page, answer)
        await chat.check_clean()
    finally:
        await chat.page.context.close()


async def test_a_tampered_store_cannot_inject_markup(chat_page: ChatPage) -> None:
    """Whatever is in localStorage (another tab, an extension, a bug) is shown as text."""
    page = chat_page.page
    evil = "<img src=x onerror=\"window.__xss.push('stored')\">"
    stored = {
        "exchanges": [
            {
                "question": evil,
                "answer": ANSWER,
                "thinking": evil,
                "toolCalls": [{"id": evil, "name": evil, "arguments": json.dumps({"q": evil})}, {"name": 5}],
                "model": evil,
                "status": "failed",
                "error": evil,
                "stats": evil,
            },
            {"question": {"toString": evil}},
            "not an exchange",
        ]
    }
    await page.evaluate(
        """([stored, title]) => {
            localStorage.setItem("llm-sse.conversations", JSON.stringify([{id: "x1", title, updated: 1}]));
            localStorage.setItem("llm-sse.conversation.x1", JSON.stringify(stored));
            localStorage.setItem("llm-sse.current", "x1");
        }""",
        [stored, evil],
    )
    await page.reload()
    await page.evaluate("window.__xss = []")
    answer = chat_page.answer()
    await expect(answer.locator(".turn-error-text")).to_have_text(evil)
    await expect(answer.locator(".turn-model")).to_have_text(evil)
    await expect(answer.locator(".tool-call")).to_have_count(1)
    await expect(answer.locator(".tool-call-head code")).to_have_text(evil)
    await expect(page.locator("#chats .chat-open")).to_have_text([evil])
    await expect(page.locator(".turn-user")).to_have_count(1)
    await assert_inert(page, answer)


async def test_a_tool_call_with_markup_in_its_name_and_arguments_is_text(chat_page: ChatPage) -> None:
    page = chat_page.page
    await page.evaluate("window.__xss = []")
    call = {
        "id": "<b>id</b>",
        "name": "<img src=x onerror=\"window.__xss.push('tool-name')\">",
        "arguments": "```\n<script>window.__xss.push('tool-args')</script>\n[x](javascript:window.__xss.push(1))",
    }
    frames = [
        ("meta", {"id": "s1", "model": "m", "provider": "ollama"}),
        ("tool_call", call),
        ("done", {"finish_reason": "tool_calls", "usage": {}, "timing": {}, "skipped_lines": 0}),
    ]
    body = "".join(f"event: {e}\ndata: {json.dumps(d)}\nid: {n}\n\n" for n, (e, d) in enumerate(frames, 1))

    async def fulfil(route: Route) -> None:
        await route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    await page.route("**/api/chat", fulfil)
    await chat_page.ask("Use a tool")
    answer = chat_page.answer()
    await expect(answer.locator(".tool-call-head code")).to_have_text(call["name"])
    await expect(answer.locator(".tool-call pre code")).to_have_text(call["arguments"])
    await assert_inert(page, answer)
