// The page's logic that needs no DOM: Markdown block splitting, link safety,
// and the wording of errors and timings.  (Rendering is tested in Chromium,
// tests/browser/.)
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseBlocks, safeUrl } from "../../static/markdown.js";
import { ChatError } from "../../static/sse.js";
import { describeDone, describeError, retryPhrase, withoutRetryAdvice } from "../../static/wording.js";

const kinds = (text) => parseBlocks(text).map((b) => b.kind);

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

test("blocks: paragraphs, headings, lists, quotes, code, tables, rules", () => {
  const text = [
    "# Title",
    "",
    "A paragraph",
    "on two lines.",
    "- one",
    "- two",
    "",
    "> quoted",
    "",
    "```js",
    "let x = 1;",
    "```",
    "",
    "| a | b |",
    "|---|:-:|",
    "| 1 | 2 |",
    "",
    "---",
  ].join("\n");
  assert.deepEqual(kinds(text), ["heading", "paragraph", "list", "quote", "code", "table", "rule"]);
  const [heading, paragraph, list, , code, table] = parseBlocks(text);
  assert.equal(heading.level, 1);
  assert.equal(paragraph.text, "A paragraph\non two lines.");
  assert.equal(list.items.length, 2);
  assert.deepEqual([code.kind, code.lang, code.code, code.closed], ["code", "js", "let x = 1;", true]);
  assert.equal(code.key, "code\u0000```js\nlet x = 1;\n```");
  assert.deepEqual(table.header, ["a", "b"]);
  assert.deepEqual(table.align, ["", "center"]);
  assert.deepEqual(table.rows, [["1", "2"]]);
});

test("an unclosed code fence while streaming is still a code block", () => {
  const [code] = parseBlocks("```python\ndef f():\n    return 1");
  assert.equal(code.kind, "code");
  assert.equal(code.closed, false);
  assert.equal(code.code, "def f():\n    return 1");
});

test("raw HTML is just a paragraph of text", () => {
  const blocks = parseBlocks('<img src=x onerror="alert(1)">\n<script>alert(2)</script>');
  assert.deepEqual(blocks.map((b) => [b.kind, b.text]), [
    ["paragraph", '<img src=x onerror="alert(1)">\n<script>alert(2)</script>'],
  ]);
});

test("nested lists under numbered items, with two-space indents", () => {
  const [list] = parseBlocks("1. Step\n  - detail\n  - more\n2. Next");
  assert.equal(list.ordered, true);
  assert.equal(list.items.length, 2);
  assert.deepEqual(
    list.items[0].map((b) => b.kind),
    ["paragraph", "list"],
  );
  assert.equal(list.items[0][1].items.length, 2);
});

test("a list can start right after a paragraph line", () => {
  assert.deepEqual(kinds("Options:\n- a\n- b\n\nAfter."), ["paragraph", "list", "paragraph"]);
});

test("an ordered list keeps its start number", () => {
  const [list] = parseBlocks("3. three\n4. four");
  assert.equal(list.start, 3);
});

test("a finished block keeps its key while text is appended after it", () => {
  const before = parseBlocks("First paragraph.\n\nSecond");
  const after = parseBlocks("First paragraph.\n\nSecond grows\n\n- and a list");
  assert.equal(before[0].key, after[0].key);
  assert.notEqual(before[1].key, after[1].key);
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
    "Rate limited: Too many requests. Try again in 30 seconds.",
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
    "Rate limited: Too many requests: the limit is 20 a minute (bursts of 5). Try again in 12 seconds.",
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
    "Rate limited: You already have 2 answers streaming; wait for one to finish. Try again in 5 seconds.",
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
