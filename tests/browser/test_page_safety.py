"""Model output is untrusted: whatever an answer contains, it renders as inert text or safe markup."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import ChatPage
from tests.fakes.ollama import Script, token_lines

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
    + "```html\n<script>window.__xss.push('code')</script>\n```\n"
)

# Elements the renderer may create; anything else in an answer is an injection.
ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "a", "ul", "ol", "li", "blockquote",
    "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "div", "span", "button",
}  # fmt: skip


async def test_html_scripts_and_javascript_links_in_an_answer_are_inert(chat_page: ChatPage) -> None:
    page = chat_page.page
    await page.evaluate("window.__xss = []")
    # Split into small pieces so partial tags are rendered (and re-rendered) while streaming.
    pieces = [ANSWER[i : i + 5] for i in range(0, len(ANSWER), 5)]
    thinking = ["<img src=x onerror=\"window.__xss.push('thinking')\"> ", "<script>window.__xss.push('t2')</script>"]
    chat_page.fake.push(Script(token_lines(pieces, thinking=thinking)))
    await chat_page.ask("Show me some HTML")
    answer = await chat_page.finished()
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
        "img, iframe, object, embed, svg, base, meta[http-equiv], form:not(#composer):not(#key-form)"
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
    await expect(answer.locator("pre code")).to_have_text("<script>window.__xss.push('code')</script>")
    await expect(answer.locator("ul > li")).to_have_count(2)
    await expect(answer.locator("a", has_text="safe link")).to_have_count(1)
    assert await page.evaluate("window.__xss") == []
