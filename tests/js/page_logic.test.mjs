// The page's logic that needs no browser: Markdown as the page renders it
// (into a small DOM), link safety, and the wording of errors and timings.
// (Rendering in a real DOM, and safety against script, is tested in Chromium, tests/browser/.)
import assert from "node:assert/strict";
import { test } from "node:test";

import { MarkdownView, safeUrl } from "../../static/markdown.js";
import { ChatError } from "../../static/sse.js";
import {
  describeDone,
  describeError,
  needsNewChat,
  retryPhrase,
  withSeparators,
  withoutRetryAdvice,
} from "../../static/wording.js";
import { createDocument } from "./dom.mjs";

const doc = createDocument();
const html = (text, options) => {
  const box = doc.createElement("div");
  const view = new MarkdownView(box, { highlight: false, ...options });
  view.update(text);
  view.finish();
  return box.innerHTML;
};
const LINK = 'rel="noopener noreferrer nofollow" target="_blank"';

test("only http, https and mailto URLs become links", () => {
  assert.equal(safeUrl("https://example.com/a?b=1"), "https://example.com/a?b=1");
  assert.equal(safeUrl("http://example.com"), "http://example.com/");
  assert.equal(safeUrl("mailto:a@example.com"), "mailto:a@example.com");
  for (const bad of [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\u0001javascript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "/relative/path",
    "//example.com/protocol-relative",
    "&#106;avascript:alert(1)",
  ]) {
    assert.equal(safeUrl(bad), null, bad);
  }
});

test("what answers contain: nested emphasis, entities, reference links, autolinks", () => {
  assert.equal(html("***Warning:*** read *a **b** c*"), "<p><em><strong>Warning:</strong></em> read <em>a <strong>b</strong> c</em></p>");
  assert.equal(html("&copy; 2025&nbsp;x &amp; y"), "<p>\u00a9 2025\u00a0x &amp; y</p>");
  assert.equal(
    html('See [the docs][d].\n\n[d]: https://example.com/docs "Docs"'),
    `<p>See <a href="https://example.com/docs" title="Docs" ${LINK}>the docs</a>.</p>`,
  );
  assert.equal(html("<name@example.com>"), `<p><a href="mailto:name@example.com" ${LINK}>name@example.com</a></p>`);
  assert.equal(html("> quoted\nlazy line"), "<blockquote><p>quoted<br />lazy line</p></blockquote>");
  assert.equal(html("Title\n====="), "<h3>Title</h3>");
});

test("a table right after an 'Options:' line is a table", () => {
  assert.equal(
    html("Options:\n| Language | Year |\n|---|--:|\n| Python | 1991 |"),
    '<p>Options:</p><div class="table-wrap"><table><thead><tr><th>Language</th><th class="align-right">Year</th></tr></thead>' +
      '<tbody><tr><td>Python</td><td class="align-right">1991</td></tr></tbody></table></div>',
  );
});

test("tight and loose nested lists", () => {
  assert.equal(html("1. Step\n   - detail\n   - more\n2. Next"), "<ol><li>Step<ul><li>detail</li><li>more</li></ul></li><li>Next</li></ol>");
  assert.equal(html("- a\n\n- b"), "<ul><li><p>a</p></li><li><p>b</p></li></ul>");
  assert.equal(html("3. three\n4. four"), '<ol start="3"><li>three</li><li>four</li></ol>');
});

test("raw HTML and unsafe links stay text", () => {
  assert.equal(
    html('<img src=x onerror="alert(1)">\n<script>alert(2)</script>'),
    "<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;<br />&lt;script&gt;alert(2)&lt;/script&gt;</p>",
  );
  assert.equal(html("[bad](javascript:alert(1))"), "<p>[bad](javascript:alert(1))</p>");
  assert.equal(html("[relative](/api/chat)"), "<p>relative</p>");
  assert.equal(html("![pixel](https://example.com/p.png)"), `<p><a href="https://example.com/p.png" ${LINK} class="image-link">pixel</a></p>`);
});

test("an unclosed code fence while streaming is still a code block", () => {
  const out = html("```python\ndef f():\n    return 1");
  assert.match(out, /<pre><code class="language-python">def f\(\):\n    return 1<\/code><\/pre>/);
  assert.match(out, /<span class="code-lang">python<\/span>/);
});

test("a finished block's nodes are never replaced or touched while text is appended", () => {
  const box = doc.createElement("div");
  const view = new MarkdownView(box, { highlight: false });
  view.update("First paragraph.\n\n- one\n- tw");
  const [first, list] = box.children;
  const firstItem = list.children[0];
  const firstHtml = first.innerHTML;
  view.update("First paragraph.\n\n- one\n- two\n- three\n\nAfter.");
  assert.equal(box.children[0], first);
  assert.equal(box.children[1], list);
  assert.equal(list.children[0], firstItem);
  assert.equal(first.innerHTML, firstHtml);
  assert.equal(list.children.length, 3);
  assert.equal(box.children[2].textContent, "After.");
});

test("a text that is not the last one extended is rendered afresh", () => {
  const box = doc.createElement("div");
  const view = new MarkdownView(box, { highlight: false });
  view.update("One.\n\nTwo.\n\nThree");
  view.update("Other.");
  assert.equal(box.innerHTML, "<p>Other.</p>");
});

test("retry times in plain words", () => {
  assert.equal(retryPhrase(null), "");
  assert.equal(retryPhrase(1), "Try again in a second.");
  assert.equal(retryPhrase(7), "Try again in 7 seconds.");
  assert.equal(retryPhrase(60), "Try again in a minute.");
  assert.equal(retryPhrase(150), "Try again in 3 minutes.");
  assert.equal(retryPhrase(3600), "Try again in about an hour.");
  assert.equal(retryPhrase(3 * 3600), "Try again in about 3 hours.");
});

test("errors in plain words", () => {
  const error = (fields) => new ChatError({ code: "x", message: "m", ...fields });
  assert.equal(
    describeError(error({ status: 401, code: "unauthorized", message: "missing or invalid API key" })),
    "Not signed in: Missing or invalid API key.",
  );
  assert.equal(
    describeError(error({ status: 429, code: "rate_limited", message: "too many requests", retryAfter: 30 })),
    "Too many requests. Try again in 30 seconds.",
  );
  assert.equal(
    describeError(error({ status: 503, code: "upstream_busy", message: "the model server is busy", retryAfter: 2 })),
    "The model server is busy. Try again in 2 seconds.",
  );
  assert.equal(
    describeError(error({ status: 404, code: "model_not_found", message: "model 'x' not found" })),
    "Model 'x' not found.",
  );
  assert.equal(
    describeError(error({ phase: "stream", code: "upstream_timeout", message: "ollama sent nothing for 60 s" })),
    "The answer stopped early: Ollama sent nothing for 60 s.",
  );
  assert.equal(
    describeError(error({ code: "network_error", phase: "request" })),
    "Could not reach the server. Check the connection and try again.",
  );
  assert.equal(
    describeError(error({ code: "network_error", phase: "stream" })),
    "The connection to the server broke off; the answer above is incomplete.",
  );
});

test("the service's limits and restarts in plain words, with one retry time", () => {
  const error = (fields) => new ChatError({ code: "x", message: "m", ...fields });
  // The service's own messages (sse/limits.py, sse/server.py): the page's precise
  // retry time replaces their vaguer "try again ..." instead of repeating it.
  assert.equal(
    describeError(
      error({
        status: 429,
        code: "rate_limited",
        message: "too many requests: the limit is 20 a minute (bursts of 5); try again in 12 s",
        retryAfter: 12,
      }),
    ),
    "Too many requests: the limit is 20 a minute (bursts of 5). Try again in 12 seconds.",
  );
  assert.equal(
    describeError(
      error({
        status: 429,
        code: "too_many_streams",
        message: "you already have 2 answers streaming; wait for one to finish",
        retryAfter: 5,
      }),
    ),
    "You already have 2 answers streaming; wait for one to finish. Try again in 5 seconds.",
  );
  assert.equal(
    describeError(
      error({
        status: 503,
        code: "server_busy",
        message: "the server is answering as many requests as it can (8); try again shortly",
        retryAfter: 5,
      }),
    ),
    "The server is answering as many requests as it can (8). Try again in 5 seconds.",
  );
  assert.equal(
    describeError(
      error({ status: 503, code: "shutting_down", message: "the server is restarting; try again in a moment", retryAfter: 1 }),
    ),
    "The server is restarting. Try again in a second.",
  );
  // Without a retry time the server's advice is all there is: it stays.
  assert.equal(
    describeError(error({ status: 503, code: "model_busy", message: "the model is busy; try again shortly" })),
    "The model is busy; try again shortly.",
  );
  assert.equal(withoutRetryAdvice("Try again later"), "Try again later");
  // Only a last "; try again ..." clause goes: other wordings stay whole.
  assert.equal(
    withoutRetryAdvice("server busy, please try again.  maximum pending requests exceeded"),
    "server busy, please try again.  maximum pending requests exceeded",
  );
});

test("timings from the done frame", () => {
  const done = { timing: { ttft_ms: 183.2, total_ms: 2410.9, tokens_per_s: 48.3 }, usage: { completion_tokens: 112 } };
  assert.equal(describeDone(done), "First token after 183 ms · 48.3 tokens/s · 112 tokens");
  assert.equal(
    describeDone({ timing: { ttft_ms: 2500, tokens_per_s: null }, usage: { completion_tokens: 1 } }),
    "First token after 2.5 s · 1 token",
  );
  assert.equal(describeDone({}), "");
});

test("limits in plain words: no field paths, numbers with separators, a way forward", () => {
  const error = (fields) => new ChatError({ code: "input_too_long", message: "m", status: 413, ...fields });
  const long = error({ field: "messages[0].content", message: "messages[0].content has 33000 characters; the limit is 32000" });
  assert.equal(describeError(long), "A message is too long: 33,000 characters, and the limit is 32,000. Shorten it or split it.");
  assert.equal(needsNewChat(long), false);
  const context = error({ field: null, message: "the conversation is 9000 tokens; SmolLM2-135M holds 8192 in its context" });
  assert.equal(
    describeError(context),
    "This conversation no longer fits the model's memory (the conversation is 9,000 tokens; SmolLM2-135M holds 8,192 in its context). Start a new chat to go on.",
  );
  assert.equal(needsNewChat(context), true);
  const many = error({ field: "messages", message: "'messages' has 201 entries; the limit is 200" });
  assert.equal(needsNewChat(many), true);
  assert.equal(describeError(many), "This conversation has 201 messages, and the server takes at most 200. Start a new chat to go on.");
  const upstream = new ChatError({ code: "upstream_rejected", message: "input length exceeds the context length", status: 400 });
  assert.equal(needsNewChat(upstream), true);
  const invalid = new ChatError({ code: "invalid_request", message: "messages[2].content contains a lone surrogate", status: 400 });
  assert.equal(describeError(invalid), "A message contains a lone surrogate.");
  assert.equal(describeError(new ChatError({ code: "rate_limited", message: "too many requests", status: 429, retryAfter: 7 }), { countdown: true }), "Too many requests.");
  assert.equal(withSeparators("HTTP 502, port 8080: 12345 of 1000000 in 2.5 s, v1.2345"), "HTTP 502, port 8080: 12,345 of 1,000,000 in 2.5 s, v1.2345");
});
