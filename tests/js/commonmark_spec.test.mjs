// The CommonMark spec's examples (commonmark-spec 0.31.2, vendored in
// tests/fixtures/commonmark-spec by scripts/vendor.sh) through the page's own
// parser configuration and DOM builder (static/markdown.js), built into a
// small DOM (tests/js/dom.mjs) and compared as HTML.
//
// The page differs from the spec on purpose in these ways, and only these:
// raw HTML is shown as text (model output must never become markup), images
// become links to the image (nothing is loaded from an answer), bare URLs and
// e-mail addresses become links (answers write them bare), and a code block's
// language is reduced to a safe class name.  The examples each of those
// changes are listed below, and a test checks the list is exact.  Links are
// built with a permissive policy here: which URLs the page links is tested
// on its own (page_logic.test.mjs) and in Chromium (tests/browser/).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

import { MarkdownView } from "../../static/markdown.js";
import { createDocument } from "./dom.mjs";

const require = createRequire(import.meta.url);
const spec = require("../fixtures/commonmark-spec/index.js");

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const EXCLUDED = {
  "raw HTML is shown as text": [
    ...range(148, 191), // the section "HTML blocks"
    ...range(613, 617), 623, ...range(625, 631), // the section "Raw HTML"
    21, 31, 201, 308, 309, 344, 475, 476, 477, 491, 494, 520, 531, 642, 643,
  ],
  "images become links": [...range(572, 589), 591, 517, 524, 536],
  "bare URLs and addresses become links": [602, 608, 611, 612],
  "a language becomes a safe class name": [144],
}; // prettier-ignore
const excluded = new Map(Object.entries(EXCLUDED).flatMap(([why, numbers]) => numbers.map((n) => [n, why])));

const BLOCK = "(?:ul|ol|li|p|blockquote|h[1-6]|hr|pre|table|thead|tbody|tr|th|td)";
/** Whitespace between block tags is not content: drop it on both sides. */
const normalise = (html) =>
  html
    .replace(/<br \/>\n/g, "<br />")
    .replace(new RegExp(`\\n(?=</?${BLOCK}[ />])`, "g"), "")
    .replace(new RegExp(`(</?${BLOCK}(?: [^>]*)?>)\\n`, "g"), "$1");
/** The page's own wrappers (a code block's bar, a table's scroll box) and link attributes, away. */
const unwrap = (html) =>
  html
    .replace(/<div class="code-block"><div class="code-bar">.*?<\/div>(<pre>[\s\S]*?<\/pre>)<\/div>/g, "$1")
    .replace(/<div class="table-wrap">(<table>[\s\S]*?<\/table>)<\/div>/g, "$1")
    .replace(/ rel="noopener noreferrer nofollow" target="_blank"/g, "");

const doc = createDocument();
function render(markdown) {
  const box = doc.createElement("div");
  const view = new MarkdownView(box, { headingOffset: 0, linkPolicy: (href) => href, breaks: false, highlight: false });
  view.update(markdown);
  view.finish();
  return normalise(unwrap(box.innerHTML));
}

const examples = spec.tests.map((e) => ({
  ...e,
  markdown: e.markdown.replace(/→/g, "\t"),
  html: normalise(e.html.replace(/→/g, "\t")),
}));

test("the spec has its 652 examples", () => {
  assert.equal(examples.length, 652);
});

for (const example of examples.filter((e) => !excluded.has(e.number))) {
  test(`spec example ${example.number} (${example.section})`, () => {
    assert.equal(render(example.markdown), example.html, JSON.stringify(example.markdown));
  });
}

test("every excluded example does differ from the spec: the list is exact", () => {
  const same = examples.filter((e) => excluded.has(e.number) && render(e.markdown) === e.html).map((e) => e.number);
  assert.deepEqual(same, []);
  assert.equal(excluded.size, 99);
});

test("streamed in pieces, every example renders as it does whole", () => {
  const differ = [];
  for (const example of examples) {
    const box = doc.createElement("div");
    const view = new MarkdownView(box, { headingOffset: 0, linkPolicy: (href) => href, breaks: false, highlight: false });
    for (let end = 3; end < example.markdown.length; end += 3) view.update(example.markdown.slice(0, end));
    view.update(example.markdown);
    view.finish();
    if (normalise(unwrap(box.innerHTML)) !== render(example.markdown)) differ.push(example.number);
  }
  assert.deepEqual(differ, []);
});
