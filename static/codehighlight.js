// Syntax highlighting of code blocks, by highlight.js (vendored, see docs/page.md).
//
// highlight.js answers with an HTML string.  The page never parses HTML from
// anywhere, so that string is read here by a grammar of exactly what
// highlight.js writes -- `<span class="...">`, `</span>` and text with its five
// escapes -- and built as elements and text nodes.  Anything else in it (which
// would be a highlight.js bug) makes the block plain text: the code is never
// lost and never becomes markup.

import { hljs } from "./vendored.js";

/** The highlight.js name of a fence's language, or null if it has no grammar for it. */
export function grammarOf(lang) {
  if (!lang || lang.length > 40) return null;
  const language = hljs.getLanguage(lang);
  return language ? lang : null;
}

const PIECE = /<span class="([a-zA-Z0-9_ -]+)">|<\/span>|[^<&]+|&(amp|lt|gt|quot|#x27);/y;
const ENTITY = { amp: "&", lt: "<", gt: ">", quot: '"', "#x27": "'" };

/**
 * Elements and text nodes from highlight.js's HTML, in a fragment; null if
 * the HTML is anything but spans with classes and escaped text.
 */
export function fragmentOf(html, doc = document) {
  const root = doc.createDocumentFragment();
  const stack = [root];
  let pos = 0;
  let text = "";
  const flush = () => {
    if (text) stack[stack.length - 1].append(doc.createTextNode(text));
    text = "";
  };
  while (pos < html.length) {
    PIECE.lastIndex = pos;
    const match = PIECE.exec(html);
    if (!match) return null;
    pos = PIECE.lastIndex;
    if (match[1] !== undefined) {
      flush();
      const span = doc.createElement("span");
      span.className = match[1];
      stack[stack.length - 1].append(span);
      stack.push(span);
    } else if (match[0] === "</span>") {
      flush();
      if (stack.length === 1) return null;
      stack.pop();
    } else if (match[2] !== undefined) {
      text += ENTITY[match[2]];
    } else {
      text += match[0];
    }
  }
  flush();
  return stack.length === 1 ? root : null;
}

/**
 * Show `code` in `element`, highlighted as `lang` when highlight.js knows it.
 */
export function highlightInto(element, code, lang) {
  const grammar = grammarOf(lang);
  let fragment = null;
  if (grammar && code) {
    try {
      const html = hljs.highlight(code, { language: grammar, ignoreIllegals: true }).value;
      fragment = fragmentOf(html, element.ownerDocument);
    } catch {
      fragment = null; // a grammar that throws: plain text it is
    }
  }
  if (fragment) element.replaceChildren(fragment);
  else element.textContent = code;
}
