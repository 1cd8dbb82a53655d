"""static/markdown.js in Chromium: what each construct renders to, highlighting, and incremental updates."""

from __future__ import annotations

from tests.browser.conftest import ChatPage

RENDER = """
async (cases) => {
  const { MarkdownView } = await import("./markdown.js");
  const out = {};
  for (const [source] of cases) {
    const box = document.createElement("div");
    new MarkdownView(box).update(source);
    out[source] = box.innerHTML;
  }
  return out;
}
"""

CASES = [
    ("plain text", "<p>plain text</p>"),
    ("two\nlines", "<p>two<br>lines</p>"),
    (
        "**bold** and *it* and _it_ and ~~gone~~",
        "<p><strong>bold</strong> and <em>it</em> and <em>it</em> and <del>gone</del></p>",
    ),
    ("snake_case_name and 2 * 3 * 4", "<p>snake_case_name and 2 * 3 * 4</p>"),
    ("`a <b> c` and ``x ` y``", "<p><code>a &lt;b&gt; c</code> and <code>x ` y</code></p>"),
    ("\\*not em\\* and \\<b>", "<p>*not em* and &lt;b&gt;</p>"),
    ("unclosed **bold", "<p>unclosed **bold</p>"),
    (
        "[docs](https://example.com/a_b) and https://example.org/x.",
        '<p><a href="https://example.com/a_b" rel="noopener noreferrer nofollow" target="_blank">docs</a> and '
        '<a href="https://example.org/x" rel="noopener noreferrer nofollow" target="_blank">https://example.org/x</a>.</p>',
    ),
    ("[bad](javascript:alert(1))", "<p>[bad](javascript:alert(1))</p>"),
    ("<b>raw</b>", "<p>&lt;b&gt;raw&lt;/b&gt;</p>"),
    ("## Heading *x*", "<h4>Heading <em>x</em></h4>"),
    ("- a\n- b", "<ul><li>a</li><li>b</li></ul>"),
    ("3. c\n4. d", '<ol start="3"><li>c</li><li>d</li></ol>'),
    ("- a\n\n- b", "<ul><li><p>a</p></li><li><p>b</p></li></ul>"),
    ("- a\n  - a1\n- b", "<ul><li>a<ul><li>a1</li></ul></li><li>b</li></ul>"),
    ("> quote", "<blockquote><p>quote</p></blockquote>"),
    ("---", "<hr>"),
    (
        "```js\nlet a = '<x>';\n```",
        '<div class="code-block"><div class="code-bar"><span class="code-lang">js</span>'
        '<button class="copy" type="button" aria-label="Copy js code">Copy</button></div>'
        '<pre><code class="language-js"><span class="hljs-keyword">let</span> a = '
        "<span class=\"hljs-string\">'&lt;x&gt;'</span>;\n</code></pre></div>",
    ),
    (
        "| a | b |\n|:--|--:|\n| 1 | 2 |",
        '<div class="table-wrap"><table><thead><tr><th class="align-left">a</th><th class="align-right">b</th></tr>'
        '</thead><tbody><tr><td class="align-left">1</td><td class="align-right">2</td></tr></tbody></table></div>',
    ),
]


async def test_each_construct_renders_to_safe_markup(chat_page: ChatPage) -> None:
    rendered = await chat_page.page.evaluate(RENDER, CASES)
    wrong = {source: rendered[source] for source, html in CASES if rendered[source] != html}
    assert wrong == {}


async def test_updates_rebuild_only_the_block_that_changed(chat_page: ChatPage) -> None:
    result = await chat_page.page.evaluate(
        """async () => {
          const { MarkdownView } = await import("./markdown.js");
          const box = document.createElement("div");
          const view = new MarkdownView(box);
          let text = "First paragraph.\\n\\n```py\\nx = 1";
          view.update(text);
          const [first, code] = box.children;
          const copy = code.querySelector("button");
          for (const more of ["\\ny = 2", "\\n```\\n\\nAfter", " the code."]) {
            text += more;
            view.update(text);
          }
          return {
            sameFirst: box.children[0] === first,
            sameCode: box.children[1] === code,
            sameButton: code.querySelector("button") === copy,
            code: code.querySelector("code").textContent,
            last: box.children[2].textContent,
            count: box.children.length,
          };
        }"""
    )
    assert result == {
        "sameFirst": True,
        "sameCode": True,
        "sameButton": True,
        "code": "x = 1\ny = 2\n",
        "last": "After the code.",
        "count": 3,
    }


async def test_a_code_block_is_highlighted_while_it_streams_and_its_tail_stays_plain(chat_page: ChatPage) -> None:
    result = await chat_page.page.evaluate(
        """async () => {
          const { MarkdownView } = await import("./markdown.js");
          const box = document.createElement("div");
          const view = new MarkdownView(box);
          const seen = [];
          let text = "```python\\n";
          for (const more of ["def f(x):\\n", "    return x  # do", "ne\\n", "```\\n"]) {
            text += more;
            view.update(text);
            const code = box.querySelector("code");
            const spans = [...code.querySelectorAll("span")].map((s) => s.className + ":" + s.textContent);
            seen.push([code.textContent, spans]);
          }
          view.finish();
          return seen;
        }"""
    )
    # Complete lines are highlighted as they arrive; the line being written is plain text until it ends.
    assert result[0] == ["def f(x):\n", ["hljs-keyword:def", "hljs-title function_:f", "hljs-params:x"]]
    assert result[1][0] == "def f(x):\n    return x  # do"
    assert result[1][1] == result[0][1]
    assert "hljs-comment:# done" in result[2][1]
    assert result[3][0] == "def f(x):\n    return x  # done\n"


async def test_an_unknown_or_hostile_language_is_plain_text_with_its_name_as_text(chat_page: ChatPage) -> None:
    result = await chat_page.page.evaluate(
        """async () => {
          const { MarkdownView } = await import("./markdown.js");
          const box = document.createElement("div");
          const fences = "```<img/src/onerror=alert(1)>\\n<b>x</b>\\n```\\n\\n```nosuchlang\\nlet x\\n```";
          new MarkdownView(box).update(fences);
          return [...box.querySelectorAll(".code-block")].map((b) => {
            const code = b.querySelector("code");
            return [b.querySelector(".code-lang").textContent, code.className, code.innerHTML];
          });
        }"""
    )
    assert result == [
        ["<img/src/onerror=alert(1)>", "language-imgsrconerroralert1", "&lt;b&gt;x&lt;/b&gt;\n"],
        ["nosuchlang", "language-nosuchlang", "let x\n"],
    ]
